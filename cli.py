"""`flask asin`: look ASINs up from the command line through the service's own code (not HTTP to itself).

`flask asin lookup B07N4M94X4` prints each entry as `GET /asin/<asin>` answers it. `flask asin batch
in.csv -o out.csv` writes one result row per input row, a chunk at a time, and a second run with the
same output resumes where an interrupted one stopped.

Run from the repository root: `.flaskenv` names `create_cli_app`, which builds the service's app and,
with no SP-API credentials and no SP_API_ENDPOINT, serves SP-API from the bundled emulator in this
process. The commands print their output on stdout and everything else (progress, the service's
warnings) on stderr.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from config import ConfigError, Settings, load_settings
from routes import asin_service
from services import errors
from services.asin_service import AsinService
from services.errors import LookupFailure
from services.jobs import Job, JobService, job_step
from utils.csv_io import CsvError, csv_rows, read_done_inputs, read_identifier_column
from utils.marketplaces import UnknownCountry, resolve_country

Entry = dict[str, Any]

# Where create_cli_app keeps the emulator it started, on app.extensions.
EMULATOR_KEY = "cli_emulator"
# Failures that are the input's own answer (no such item, not an ASIN or identifier): written as its row.
ITEM_ERRORS = frozenset({errors.NOT_FOUND, errors.INVALID_ASIN, errors.INVALID_IDENTIFIER})
# Seconds to wait before asking again for inputs that failed in passing (SP-API 5xx, timeouts,
# unreachable) after the service's own retries. When they still fail, the batch stops without
# writing them, so that running it again resumes with them instead of keeping their errors.
RETRY_WAITS = (5.0, 15.0, 45.0)


class CliError(click.ClickException):
    """A command that cannot run as asked (unreadable input, an output holding other results): exit status 2."""

    exit_code = 2


def create_cli_app() -> Flask:
    """The app for `flask` commands: the service's, on the bundled SP-API emulator when nothing else is configured."""
    from app import create_app  # here, not at the top: app.py imports this module

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise CliError(f"configuration error: {exc}") from None
    emulator = None
    if settings.mode == "emulator" and not settings.sp_api_endpoint:
        from emulator import EmulatorServer

        # In this process (a daemon thread on a free loopback port): it ends with the command, even on
        # kill -9, and a Ctrl-C at the terminal reaches only the command, not the emulator mid-answer.
        emulator = EmulatorServer().start()
        settings = dataclasses.replace(settings, sp_api_endpoint=emulator.url)
    root = logging.getLogger()
    earlier = list(root.handlers)
    # The start-up lines go to stderr: stdout may be a command's output (JSON a script parses). The service's
    # log handler is made now, on whatever sys.stdout is; from then on it writes to stdout as in the service,
    # unless a command moves it (see _quiet_logs).
    with contextlib.redirect_stdout(sys.stderr):
        app = create_app(settings)
    for handler in root.handlers:
        if handler not in earlier and isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
            handler.setStream(sys.stdout)
    if emulator is not None:
        app.extensions[EMULATOR_KEY] = emulator
    return app


asin_cli = AppGroup(
    "asin",
    help="Look ASINs up, one by one or a CSV file of any size, through the service's own code.",
    short_help="Look ASINs up, or a CSV file of them.",
)


def _service() -> tuple[AsinService, Settings]:
    """The app's AsinService and settings; refuses when the lookups could only go to Amazon without credentials."""
    settings: Settings = current_app.config["SETTINGS"]
    if settings.mode == "emulator" and not settings.sp_api_endpoint:
        raise CliError(
            "no SP-API credentials and no SP_API_ENDPOINT: the lookups would go to Amazon and fail. Run `flask asin ...` "
            "from the repository root without --app (its .flaskenv starts the bundled emulator), or set SP_API_ENDPOINT "
            "or LWA_APP_ID, LWA_CLIENT_SECRET and SP_API_REFRESH_TOKEN"
        )
    _quiet_logs(settings)
    emulator = current_app.extensions.get(EMULATOR_KEY)
    if emulator is not None:
        click.echo(
            f"fba-backend: no SP-API credentials and no SP_API_ENDPOINT: using the bundled SP-API emulator at {emulator.url} "
            "(in this process; sandbox data, not Amazon's)",
            err=True,
        )
    return asin_service(), settings


def _quiet_logs(settings: Settings) -> None:
    """For this command: the service's log lines on stderr, not stdout (the command's output), warnings and errors only.

    The service logs a line per chunk at INFO; among a command's own lines (and across a progress bar) they
    would bury what matters. LOG_LEVEL=DEBUG shows every line.
    """
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)
    if settings.log_level != "DEBUG" and root.level < logging.WARNING:
        level = root.level
        root.setLevel(logging.WARNING)
        click.get_current_context().call_on_close(lambda: root.setLevel(level))


def _country(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The marketplace country code of --country (case-insensitive, UK = GB)."""
    if value is None:
        return None
    try:
        return resolve_country(value).code
    except UnknownCountry as exc:
        raise click.BadParameter(str(exc)) from None


country_option = click.option(
    "--country",
    "-c",
    callback=_country,
    metavar="CODE",
    help="Marketplace: US, CA, GB (or UK), DE, JP, ... (case-insensitive). Default: DEFAULT_COUNTRY (US unless set).",
)
refresh_option = click.option("--refresh", is_flag=True, help="Skip the cache: ask SP-API again.")


# -- lookup ---------------------------------------------------------------------------------------


@asin_cli.command("lookup", short_help="Look ASINs up and print their entries.")
@click.argument("asins", nargs=-1, required=True, metavar="ASIN...")
@country_option
@refresh_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "table"]),
    default="json",
    show_default=True,
    help="json: each entry as GET /asin/<asin> answers it, one object per ASIN; table: one line per ASIN.",
)
@click.pass_context
def lookup_asins(ctx: click.Context, asins: tuple[str, ...], country: str | None, refresh: bool, output_format: str) -> None:
    """Look ASINs up and print their entries (title, sales rank, brand, dimensions, identifiers...).

    One ASIN is fetched with getCatalogItem, several with searchCatalogItems (20 a call), through the
    same cache and rate limiter as the service.

    Exit status: 0 when every ASIN was found, 1 when any failed (not found, invalid, or SP-API failing),
    2 on a usage error.
    """
    service, settings = _service()
    entries = _lookup_entries(service, list(asins), country or settings.default_country, refresh, settings.max_batch_size)
    if output_format == "table":
        click.echo(_table(entries))
    else:
        for entry in entries:
            click.echo(json.dumps(entry, indent=2, ensure_ascii=False))
    ctx.exit(0 if all(entry["success"] for entry in entries) else 1)


def _lookup_entries(service: AsinService, asins: list[str], country: str, refresh: bool, chunk: int) -> list[Entry]:
    """Entries for `asins` in order: `lookup` for one, `batch_lookup` (MAX_BATCH_SIZE at a time) for several."""
    if len(asins) == 1:
        try:
            return [service.lookup(asins[0], country, refresh=refresh)]
        except LookupFailure as failure:
            return [service.failure_entry(asins[0], country, failure)]
    entries: list[Entry] = []
    for start in range(0, len(asins), chunk):
        entries.extend(service.batch_lookup(asins[start : start + chunk], country, refresh=refresh)["results"])
    return entries


def _table(entries: list[Entry]) -> str:
    """One aligned line per entry: ASIN, country, result, sales rank, brand, and the title or the error message."""
    header = ("ASIN", "COUNTRY", "RESULT", "SALES RANK", "BRAND", "TITLE / ERROR")
    rows = [header]
    for entry in entries:
        if entry["success"]:
            rank = entry.get("SalesRank")
            category = f" ({entry['SalesRankCategory']})" if rank is not None and entry.get("SalesRankCategory") else ""
            shown = ("ok", "" if rank is None else f"{rank}{category}", entry.get("Brand") or "", entry.get("Title") or "")
        else:
            shown = (entry["error"]["code"], "", "", entry["error"]["message"])
        rows.append((str(entry["asin"]), entry.get("country") or "", *shown))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]).rstrip() for row in rows)


# -- batch ----------------------------------------------------------------------------------------


class _Outage(Exception):
    """Some inputs of a chunk kept failing in passing: the entries before the first of them, and its error."""

    def __init__(self, answered: list[Entry], error: dict[str, Any], count: int) -> None:
        super().__init__(error.get("message"))
        self.answered = answered
        self.error = error
        self.count = count


def _in_passing(entry: Entry) -> bool:
    """True for a failure that says nothing about the input (quota, SP-API or the network failing)."""
    return not entry["success"] and entry["error"]["code"] not in ITEM_ERRORS


def _answer_chunk(
    look_up: Callable[[list[str]], list[Entry]],
    values: list[str],
    waiting: Callable[[float, str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> list[Entry]:
    """Entries for `values`, asking again for those that failed in passing; _Outage when they keep failing."""
    entries = look_up(values)
    retries = 0
    while True:
        passing = [index for index, entry in enumerate(entries) if _in_passing(entry)]
        if not passing:
            return entries
        failures = [entries[index]["error"] for index in passing]
        codes = {failure["code"] for failure in failures}
        after = max(float(failure.get("retry_after_seconds") or 0.0) for failure in failures)
        if codes == {errors.THROTTLED}:
            # The quota has room again in `after` seconds (our limiter, or SP-API's 429): wait as long as it takes.
            wait = max(after, 0.5)
        elif retries < len(RETRY_WAITS) and errors.AUTH_FAILED not in codes:
            wait = max(after, RETRY_WAITS[retries])
            retries += 1
        else:
            raise _Outage(entries[: passing[0]], failures[0], len(passing))
        waiting(wait, f"{len(passing)} {'/'.join(sorted(codes))}")
        sleep(wait)
        again = look_up([values[index] for index in passing])
        for index, entry in zip(passing, again, strict=True):
            entries[index] = entry


def _duration(seconds: float) -> str:
    """21s, 3m05s, 1h02m."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class _Progress:
    """A batch's progress on stderr: a bar with rate and ETA on a terminal, else a plain line per chunk."""

    def __init__(self, total: int, done: int, *, tty: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.done = done
        self._resumed_at = done
        self._tty = tty
        self._clock = clock
        self._started = clock()
        self._bar: Any = None

    def __enter__(self) -> _Progress:
        if self._tty:
            self._bar = click.progressbar(
                length=self.total,
                label="batch",
                file=sys.stderr,
                show_eta=False,  # ours counts only this run's lookups, not the rows resumed from the file
                show_percent=True,
                show_pos=True,
                item_show_func=lambda text: text,
                update_min_steps=0,
            )
            self._bar.__enter__()
            self._bar.update(self.done, "resuming" if self.done else "starting")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)

    @property
    def seconds(self) -> float:
        """Seconds since this run started."""
        return self._clock() - self._started

    def rate(self) -> str:
        """`38.5/s ETA 21s` over this run's rows so far (empty before the first chunk)."""
        elapsed, rows = self.seconds, self.done - self._resumed_at
        if elapsed <= 0 or rows <= 0:
            return ""
        per_second = rows / elapsed
        return f"{per_second:.1f}/s ETA {_duration((self.total - self.done) / per_second)}"

    def advance(self, done: int) -> None:
        """`done` rows are written now."""
        step, self.done = done - self.done, done
        if self._bar is not None:
            self._bar.update(step, self.rate())
        else:
            click.echo(f"batch: {self.done}/{self.total} ({100 * self.done / self.total:.1f}%) {self.rate()}".rstrip(), err=True)

    def waiting(self, seconds: float, reason: str) -> None:
        """The batch sleeps `seconds` before asking SP-API again."""
        text = f"waiting {seconds:.1f}s ({reason})"
        if self._bar is not None:
            self._bar.update(0, text)
        else:
            click.echo(f"batch: {self.done}/{self.total} {text}", err=True)


def _open_output(path: Path, values: Sequence[str], restart: bool) -> int:
    """Make `path` hold a header and whole rows only; the number of inputs it already answers (0 when new or --restart)."""
    header = next(csv_rows([]))
    if restart or not path.exists():
        path.write_text(header, encoding="utf-8", newline="")
        return 0
    try:
        done = read_done_inputs(path)
    except CsvError as exc:
        raise CliError(f"{exc}; use another -o, or --restart to overwrite it") from None
    count = len(done.inputs)
    if done.inputs != list(values[:count]):
        if count > len(values):
            problem = f"it holds {count} rows, more than the {len(values)} inputs"
        else:
            row = next(i for i, (old, new) in enumerate(zip(done.inputs, values, strict=False)) if old != new)
            problem = f"its row {row + 1} is for {done.inputs[row]!r} but input row {row + 1} is {values[row]!r}"
        raise CliError(f"{path} holds the results of another input ({problem}); use another -o, or --restart to overwrite it")
    # Drop a row cut short by a crash mid-write; it is written again.
    with path.open("r+b") as out:
        out.truncate(done.end_offset)
        if done.end_offset == 0:
            out.write(header.encode("utf-8"))
    return count


def _quit_on_second_interrupt() -> None:
    """Let the SP-API calls in flight finish (their answers go to the cache for the next run), unless Ctrl-C comes again."""
    # The batch pool's threads are joined at exit, and one may be waiting for a quota slot (up to REQUEST_TIMEOUT).
    click.echo(
        "any SP-API calls still in flight finish first (their answers are cached for the next run); Ctrl-C again to quit now", err=True
    )
    signal.signal(signal.SIGINT, lambda signum, frame: os._exit(130))


def _rows(values: Sequence[str], entries: Sequence[Entry]) -> str:
    """The result CSV lines of `entries`, without the header."""
    lines = csv_rows(zip(values, entries, strict=True))
    next(lines)  # the header: written once, when the file is made
    return "".join(lines)


@asin_cli.command("batch", short_help="Look up every row of a CSV file and write a result CSV; resumable.")
@click.argument("input_file", type=click.File("rb"), metavar="INPUT.csv")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="OUT.csv",
    help="Result CSV: one row per input row, in order. If it holds the first rows of an earlier run of the same input, "
    "they are kept and the rest appended.",
)
@country_option
@refresh_option
@click.option(
    "--chunk",
    type=click.IntRange(min=1),
    help="Inputs looked up, then written and flushed, at a time. Default and most: MAX_BATCH_SIZE (100 unless set).",
)
@click.option("--restart", is_flag=True, help="Overwrite OUT.csv instead of resuming it.")
@click.pass_context
def batch_csv(
    ctx: click.Context, input_file: BinaryIO, output: Path, country: str | None, refresh: bool, chunk: int | None, restart: bool
) -> None:
    """Look up every row of a CSV file of ASINs, UPCs, EANs, GTINs, ISBNs or JANs and write OUT.csv.

    The identifier column is the one named asin, upc, ean, gtin, isbn or jan (or the first column), as
    for POST /jobs. Each chunk's rows are written and flushed once looked up: Ctrl-C (exit status 130) or
    a crash keeps them, and running the same command again resumes after them. Progress goes to stderr:
    a bar on a terminal, a line per chunk otherwise. When SP-API keeps failing (after the service's
    retries and a few more here) the batch stops with exit status 1, also resumable; an ASIN that does
    not exist or an invalid identifier is only its row's error.
    """
    service, settings = _service()
    country = country or settings.default_country
    size = chunk or settings.max_batch_size
    if size > settings.max_batch_size:
        raise click.BadParameter(f"at most MAX_BATCH_SIZE ({settings.max_batch_size})", param_hint="'--chunk'")
    source = getattr(input_file, "name", "-")
    if source != "<stdin>" and output.exists() and Path(source).resolve() == output.resolve():
        raise click.BadParameter("the output would overwrite the input file", param_hint="'-o'")
    try:
        column = read_identifier_column(input_file)
        values = list(column.values)  # read it all now: a bad line later in the file fails before any lookup
    except CsvError as exc:
        raise CliError(f"{source}: {exc}") from None
    total = len(values)
    try:
        done = _open_output(output, values, restart)
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    named = f"column {column.column!r}" if column.column else "first column, no header"
    state = f"{done} already in {output}, resuming" if done else f"writing {output}"
    click.echo(f"batch: {total} {column.identifier_type} from {source} ({named}), {country}; {state}", err=True)

    look_up = functools.partial(service.lookup_list, identifier_type=column.identifier_type, country=country, refresh=refresh)
    progress = _Progress(total, done, tty=sys.stderr.isatty())
    succeeded = failed = cached = 0
    outage: _Outage | None = None
    try:
        with output.open("a", encoding="utf-8", newline="") as out, progress:
            for start in range(done, total, size):
                chunk_values = values[start : start + size]
                try:
                    entries = _answer_chunk(look_up, chunk_values, progress.waiting)
                except _Outage as stopped:
                    entries, outage = stopped.answered, stopped
                out.write(_rows(chunk_values[: len(entries)], entries))
                out.flush()
                done += len(entries)
                succeeded += sum(1 for entry in entries if entry["success"])
                failed += sum(1 for entry in entries if not entry["success"])
                cached += sum(1 for entry in entries if entry.get("cached"))
                progress.advance(done)
                if outage is not None:
                    break
    except KeyboardInterrupt:
        click.echo(f"interrupted: {done} of {total} written to {output}; run the same command again to resume", err=True)
        _quit_on_second_interrupt()
        ctx.exit(130)
    if outage is not None:
        click.echo(
            f"stopped: SP-API kept failing for {outage.count} inputs ({outage.error['code']}: {outage.error['message']}); "
            f"{done} of {total} written to {output}; run the same command again to resume",
            err=True,
        )
        ctx.exit(1)
    this_run = succeeded + failed
    click.echo(
        f"batch: done: {total} rows in {output}; this run {this_run}: {succeeded} succeeded, {failed} failed, "
        f"{cached} cached, {progress.seconds:.1f}s",
        err=True,
    )


# -- flask jobs ------------------------------------------------------------------------------

jobs_cli = AppGroup("jobs", help="Batch jobs: list, show and cancel them; `worker` runs them for JOB_BACKEND=redis.")


def _jobs() -> JobService:
    return current_app.extensions["jobs"]


def _job_or_exit(service: JobService, job_id: str) -> Job:
    job = service.store.get(job_id)
    if job is None:
        click.echo(f"no job {job_id}", err=True)
        sys.exit(1)
    return job


def _job_line(view: dict[str, Any]) -> str:
    counts = view["counts"]
    rate = f"{view['asins_per_second']:.1f}/s" if view["asins_per_second"] else "-"
    return (
        f"{view['id']}  {view['status']:<9}  {counts['done']:>7}/{counts['total']:<7} {view['progress_percent']:5.1f}%  "
        f"ok {counts['succeeded']:<7} failed {counts['failed']:<6} {rate:>8}  {view['country']} {view['identifier_type']:<4}  "
        f"{view['created_at']}"
    )


@jobs_cli.command("list", short_help="The most recent jobs, newest first.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True, help="How many jobs to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of one line per job.")
def list_jobs(limit: int, as_json: bool) -> None:
    """List recent jobs with their status, progress and rate."""
    service = _jobs()
    views = [service.view(job) for job in service.store.list(limit)]
    if as_json:
        click.echo(json.dumps({"jobs": views}, indent=2))
        return
    if not views:
        click.echo("no jobs", err=True)
    for view in views:
        click.echo(_job_line(view))


@jobs_cli.command("show", short_help="One job's status, counts, rate and ETA as JSON.")
@click.argument("job_id")
def show_job(job_id: str) -> None:
    """Print JOB_ID's status, counts, progress, rate and estimated time left (exit status 1 if there is no such job)."""
    service = _jobs()
    click.echo(json.dumps(service.view(_job_or_exit(service, job_id)), indent=2))


@jobs_cli.command("cancel", short_help="Cancel a queued or running job.")
@click.argument("job_id")
def cancel_job(job_id: str) -> None:
    """Cancel JOB_ID; its answered items stay readable (exit status 1 if there is no such job or it has finished)."""
    service = _jobs()
    job = _job_or_exit(service, job_id)
    if job.finished:
        click.echo(f"job {job_id} is already {job.status}", err=True)
        sys.exit(1)
    cancelled = service.cancel(job_id) or job
    click.echo(_job_line(service.view(cancelled)))


@jobs_cli.command("worker", short_help="Run queued job parts (JOB_BACKEND=redis), on any host.")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty instead of waiting for more.")
def run_worker(burst: bool) -> None:
    """Take job parts from the Redis queue and answer them, under the shared limiter; SIGTERM stops after the part in hand."""
    settings: Settings = current_app.config["SETTINGS"]
    service = _jobs()
    if settings.job_backend != "redis":
        # Not an error: PM2's ecosystem starts this app whatever the backend (exit 0 is not restarted).
        click.echo("JOB_BACKEND=sqlite: the service's own gunicorn workers run jobs; no queue worker is needed", err=True)
        return
    from rq import SimpleWorker

    from services.jobs_redis import bind_worker

    bind_worker(service.store, asin_service(), job_step(settings))
    # SimpleWorker runs each part in this process: the limiter, cache and SP-API clients stay warm.
    worker = SimpleWorker([service.queue], connection=service.queue.connection)
    click.echo(f"jobs worker {worker.name}: queue {service.queue.name} at {settings.redis_label}", err=True)
    worker.work(burst=burst, logging_level=settings.log_level, with_scheduler=False)
