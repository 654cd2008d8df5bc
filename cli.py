"""`flask asin`: look ASINs up from the command line through the service's own code (not HTTP to itself).

`flask asin lookup B07N4M94X4` prints each entry as `GET /asin/<asin>` answers it. `flask asin batch
in.csv -o out.csv` writes one result row per input row, a chunk at a time, and a second run with the
same output resumes where an interrupted one stopped. `flask asin scan suppliers.csv -o out.csv` does the same for a
supplier's price list (CSV or XLSX): the list's own columns, then the scan's profit, ROI and BUY / REVIEW / SKIP verdict.

Run from the repository root: `.flaskenv` names `app:create_cli_app`, which builds the service's app
and, with no SP-API credentials and no SP_API_ENDPOINT, serves SP-API from the bundled emulator in this
process. The commands print their output on stdout and everything else (progress, the service's
warnings) on stderr. `flask asin batch` and `flask asin scan` answer a list with the job runner's own step and retry
schedule (services/jobs/runner.py); `flask jobs` steers the jobs of POST /jobs through the JobService.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import click
from flask import current_app
from flask.cli import AppGroup

from config import Settings
from routes import asin_service, job_service, scanner
from services.asin_service import AsinService
from services.entries import LookupEntry
from services.entry_csv import WholeRows, csv_lines, csv_rows, read_done_inputs
from services.errors import ServiceError
from services.jobs import Job, JobService, JobSpec, PendingItem, RedisJobService
from services.jobs.runner import ITEM_RETRIES, JobSteps, Step
from services.scan import BUY, REVIEW, SKIP, row_from_json, row_json
from services.scan_csv import SCAN_COLUMNS, output_names, scan_csv_rows
from services.scan_profile import FULFILLMENTS, PRICE_SOURCES, Profile
from utils.csv_io import CsvError, read_identifier_column
from utils.marketplaces import UnknownCountry, resolve_country
from utils.supplier_list import SupplierListError, read_supplier_upload

# Where app.create_cli_app keeps the emulator it started, on app.extensions.
EMULATOR_KEY = "cli_emulator"


class CliError(click.ClickException):
    """A command that cannot run as asked (unreadable input, an output holding other results): exit status 2."""

    exit_code = 2


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


def _lookup_entries(service: AsinService, asins: list[str], country: str, refresh: bool, chunk: int) -> list[LookupEntry]:
    """Entries for `asins` in order: `lookup` for one, `batch_lookup` (MAX_BATCH_SIZE at a time) for several."""
    if len(asins) == 1:
        try:
            return [service.lookup(asins[0], country, refresh=refresh)]
        except ServiceError as failure:
            return [service.failure_entry(asins[0], country, failure)]
    entries: list[LookupEntry] = []
    for start in range(0, len(asins), chunk):
        entries.extend(service.batch_lookup(asins[start : start + chunk], country, refresh=refresh)["results"])
    return entries


def _table(entries: list[LookupEntry]) -> str:
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


# -- batch and scan: a list answered a chunk at a time into a result CSV, resumable -------------------


class _Outage(Exception):
    """Some inputs of a chunk kept failing in passing: the entries before the first of them, and its error."""

    def __init__(self, answered: list[LookupEntry], error: dict[str, Any], count: int) -> None:
        super().__init__(error.get("message"))
        self.answered = answered
        self.error = error
        self.count = count


def _answer_chunk(
    items: list[PendingItem],
    ask: Callable[[list[PendingItem]], Step],
    waiting: Callable[[float, str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> list[LookupEntry]:
    """Entries for `items`, in order, asking again (as a job would) for those that failed in passing; _Outage when they keep failing.

    `ask` is one JobSteps step. A job stores an item whose retries are spent; a row here holds an error only
    when it is that input's answer, so the command stops instead and a second run resumes with those inputs.
    """
    answers: dict[int, LookupEntry] = {}
    pending = items
    while pending:
        step = ask(pending)
        answers.update(step.answered)
        if step.unanswered:
            first = min(step.unanswered)
            answered = [answers[item.position] for item in items if item.position < first]
            raise _Outage(answered, step.unanswered[first]["error"], len(step.unanswered))
        again = set(step.retried) | set(step.throttled)
        if not again:
            break
        waiting(step.wait, f"{len(again)} {'/'.join(sorted(step.codes))}")
        sleep(step.wait)
        pending = [
            PendingItem(item.position, item.input, item.attempts + (item.position in step.retried))
            for item in pending
            if item.position in again
        ]
    return [answers[item.position] for item in items]


def _duration(seconds: float) -> str:
    """21s, 3m05s, 1h02m."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class _Progress:
    """A command's progress on stderr: a bar with rate and ETA on a terminal, else a plain line per chunk, both named `label`."""

    def __init__(self, label: str, total: int, done: int, *, tty: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
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
                label=self.label,
                file=sys.stderr,
                show_eta=False,  # ours counts only this run's rows, not those resumed from the file
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
            click.echo(f"{self.label}: {self.done}/{self.total} ({100 * self.done / self.total:.1f}%) {self.rate()}".rstrip(), err=True)

    def waiting(self, seconds: float, reason: str) -> None:
        """The command sleeps `seconds` before asking SP-API again."""
        text = f"waiting {seconds:.1f}s ({reason})"
        if self._bar is not None:
            self._bar.update(0, text)
        else:
            click.echo(f"{self.label}: {self.done}/{self.total} {text}", err=True)


def _open_output(path: Path, header: str, restart: bool, read_done: Callable[[Path], tuple[list[str], int]]) -> list[str]:
    """Make `path` hold `header` and whole rows only; the cell `read_done` picks of each row it already holds (none when new or --restart).

    `read_done` reads the rows written for these inputs: a cell of each, and where the last whole one ends
    (CsvError when the file is not a result file of this kind, CliError when it holds another input's rows).
    """
    if restart or not path.exists():
        path.write_text(header, encoding="utf-8", newline="")
        return []
    try:
        done, end_offset = read_done(path)
    except CsvError as exc:
        raise CliError(f"{exc}; use another -o, or --restart to overwrite it") from None
    # Drop a row cut short by a crash mid-write; it is written again.
    with path.open("r+b") as out:
        out.truncate(end_offset)
        if end_offset == 0:
            out.write(header.encode("utf-8"))
    return done


def _other_input(path: Path, problem: str) -> CliError:
    return CliError(f"{path} holds the results of another input ({problem}); use another -o, or --restart to overwrite it")


def _done_lookups(path: Path, values: Sequence[str]) -> tuple[list[str], int]:
    """The inputs a batch result file already answers and where its last whole row ends; CliError unless they are `values`' first."""
    done = read_done_inputs(path)
    count = len(done.inputs)
    if done.inputs != list(values[:count]):
        if count > len(values):
            raise _other_input(path, f"it holds {count} rows, more than the {len(values)} inputs")
        row = next(i for i, (old, new) in enumerate(zip(done.inputs, values, strict=False)) if old != new)
        raise _other_input(path, f"its row {row + 1} is for {done.inputs[row]!r} but input row {row + 1} is {values[row]!r}")
    return done.inputs, done.end_offset


def _quit_on_second_interrupt() -> None:
    """Let the SP-API calls in flight finish (their answers go to the cache for the next run), unless Ctrl-C comes again."""
    # The batch pool's threads are joined at exit, and one may be waiting for a quota slot (up to REQUEST_TIMEOUT).
    click.echo(
        "any SP-API calls still in flight finish first (their answers are cached for the next run); Ctrl-C again to quit now", err=True
    )
    signal.signal(signal.SIGINT, lambda signum, frame: os._exit(130))


def _answer_into(
    ctx: click.Context,
    output: Path,
    inputs: Sequence[str],
    progress: _Progress,
    *,
    size: int,
    ask: Callable[[list[PendingItem]], Step],
    render: Callable[[int, list[LookupEntry]], str],
    outcomes: Callable[[LookupEntry], Iterable[str]],
) -> Counter[str]:
    """Answer the `inputs` after the first `progress.done` (already in `output`), `size` at a time; how often each outcome came.

    Each chunk's entries are appended to `output` as `render(position of the first, entries)` gives them and
    flushed. Ctrl-C exits with status 130, SP-API failing for good with status 1: both keep the rows
    written, and the same command resumes after them.
    """
    total, done = len(inputs), progress.done
    counts: Counter[str] = Counter()
    outage: _Outage | None = None
    try:
        with output.open("a", encoding="utf-8", newline="") as out, progress:
            for start in range(done, total, size):
                items = [PendingItem(position, inputs[position], 0) for position in range(start, min(start + size, total))]
                try:
                    entries = _answer_chunk(items, ask, progress.waiting)
                except _Outage as stopped:
                    entries, outage = stopped.answered, stopped
                out.write(render(start, entries))
                out.flush()
                done += len(entries)
                for entry in entries:
                    counts.update(outcomes(entry))
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
    return counts


def _input_name(input_file: BinaryIO, output: Path) -> str:
    """The input file's name for messages; a usage error when -o names the input file itself."""
    source = getattr(input_file, "name", "-")
    if source != "<stdin>" and output.exists() and Path(source).resolve() == output.resolve():
        raise click.BadParameter("the output would overwrite the input file", param_hint="'-o'")
    return source


def _chunk_size(chunk: int | None, settings: Settings) -> int:
    """--chunk, or MAX_BATCH_SIZE; a usage error above it."""
    size = chunk or settings.max_batch_size
    if size > settings.max_batch_size:
        raise click.BadParameter(f"at most MAX_BATCH_SIZE ({settings.max_batch_size})", param_hint="'--chunk'")
    return size


output_option = click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="OUT.csv",
    help="Result CSV: one row per input row, in order. If it holds the first rows of an earlier run of the same input, "
    "they are kept and the rest appended.",
)
chunk_option = click.option(
    "--chunk",
    type=click.IntRange(min=1),
    help="Inputs looked up, then written and flushed, at a time. Default and most: MAX_BATCH_SIZE (100 unless set).",
)
restart_option = click.option("--restart", is_flag=True, help="Overwrite OUT.csv instead of resuming it.")


# -- batch ----------------------------------------------------------------------------------------


def _rows(values: Sequence[str], entries: Sequence[LookupEntry]) -> str:
    """The result CSV lines of `entries`, without the header."""
    lines = csv_rows(zip(values, entries, strict=True))
    next(lines)  # the header: written once, when the file is made
    return "".join(lines)


def _lookup_outcomes(entry: LookupEntry) -> Iterator[str]:
    """What a batch's summary counts of an entry: succeeded or failed, and cached."""
    yield "succeeded" if entry["success"] else "failed"
    if entry.get("cached"):
        yield "cached"


@asin_cli.command("batch", short_help="Look up every row of a CSV file and write a result CSV; resumable.")
@click.argument("input_file", type=click.File("rb"), metavar="INPUT.csv")
@output_option
@country_option
@refresh_option
@chunk_option
@restart_option
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
    size = _chunk_size(chunk, settings)
    source = _input_name(input_file, output)
    try:
        column = read_identifier_column(input_file)
        values = list(column.values)  # read it all now: a bad line later in the file fails before any lookup
    except CsvError as exc:
        raise CliError(f"{source}: {exc}") from None
    total = len(values)
    try:
        done = len(_open_output(output, next(csv_rows([])), restart, lambda path: _done_lookups(path, values)))
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    named = f"column {column.column!r}" if column.column else "first column, no header"
    state = f"{done} already in {output}, resuming" if done else f"writing {output}"
    click.echo(f"batch: {total} {column.identifier_type} from {source} ({named}), {country}; {state}", err=True)

    steps = JobSteps(service, size=size, retry=ITEM_RETRIES)
    progress = _Progress("batch", total, done, tty=sys.stderr.isatty())
    counts = _answer_into(
        ctx,
        output,
        values,
        progress,
        size=size,
        ask=lambda items: steps.run(items, JobSpec(country, column.identifier_type, refresh, source)),
        render=lambda start, entries: _rows(values[start : start + len(entries)], entries),
        outcomes=_lookup_outcomes,
    )
    succeeded, failed, cached = counts["succeeded"], counts["failed"], counts["cached"]
    click.echo(
        f"batch: done: {total} rows in {output}; this run {succeeded + failed}: {succeeded} succeeded, {failed} failed, "
        f"{cached} cached, {progress.seconds:.1f}s",
        err=True,
    )


# -- scan -----------------------------------------------------------------------------------------

# The scan's options that set a profile setting (services/scan_profile.py), given as typed: Profile checks them.
_PROFILE_OPTIONS = {
    "min_roi": "min_roi_percent",
    "min_profit": "min_profit",
    "max_rank": "max_sales_rank",
    "prep_cost": "prep_cost",
    "inbound_per_pound": "inbound_per_pound",
    "fulfillment": "fulfillment",
    "price_source": "price_source",
}
# --keep-X/--skip-X: the profile's skip_* setting.
_SKIP_FLAGS = {"keep_amazon": "skip_amazon_on_listing", "keep_restricted": "skip_restricted", "keep_hazmat": "skip_hazmat"}


def _scan_profile(defaults: Profile, options: dict[str, Any]) -> Profile:
    """`defaults` (the SCAN_* settings) with the options given applied; a usage error naming the option of a bad value."""
    profile = defaults
    for name, value in options.items():
        if value is None:
            continue
        if name in _SKIP_FLAGS:
            key, value = _SKIP_FLAGS[name], not value
        else:
            # 0 is "no limit", as SCAN_MAX_SALES_RANK=0.
            key, value = _PROFILE_OPTIONS[name], None if name == "max_rank" and value.strip() == "0" else value
        try:
            profile = profile.with_overrides({key: value})
        except ServiceError as exc:
            raise CliError(f"--{name.replace('_', '-')}: {exc.message}") from None
    return profile


def _as_written(values: Iterable[Any]) -> list[str]:
    """`values` as a result file's line holds them, read back (spreadsheet-safe text: true/false, formula starts quoted)."""
    return next(csv.reader([csv_lines()(values)]))


def _done_scan_rows(path: Path, columns: Sequence[str], inputs: Sequence[str]) -> tuple[list[str], int]:
    """The verdicts of the rows a scan result file already holds for `inputs` (stored rows), and where its last whole row ends.

    CsvError when its header is not the list's columns and the scan's; CliError when a row's input cells are
    not those of the input row in its place.
    """
    header = _as_written([*columns, *output_names(columns)])
    verdict = len(columns) + SCAN_COLUMNS.index("verdict")
    verdicts: list[str] = []
    shown = f"{SCAN_COLUMNS[0]},...,{SCAN_COLUMNS[-1]}"
    refusal = f"{path} is not a scan result file of this list: its header is not the list's {len(columns)} columns, then {shown}"
    with path.open("rb") as stream:
        rows = WholeRows(stream, header, refusal)
        for row in rows:
            number = len(verdicts)
            if number >= len(inputs):
                raise _other_input(path, f"it holds more rows than the {len(inputs)} of the list")
            fields = row_from_json(inputs[number]).fields
            expected = _as_written(fields.get(column) for column in columns)
            if row[: len(columns)] != expected:
                at = next(i for i, (old, new) in enumerate(zip(row, expected, strict=False)) if old != new)
                raise _other_input(
                    path, f"its row {number + 1} has {columns[at]} {row[at]!r} but the list's row {number + 1} has {expected[at]!r}"
                )
            verdicts.append(row[verdict])
    return verdicts, rows.end


def _scan_rows(columns: Sequence[str], entries: Sequence[LookupEntry]) -> str:
    """The scan result CSV lines of `entries`, without the header."""
    lines = scan_csv_rows(columns, entries)
    next(lines)  # the header: written once, when the file is made
    return "".join(lines)


@asin_cli.command("scan", short_help="Scan a supplier's price list for profit and write a result CSV; resumable.")
@click.argument("input_file", type=click.File("rb"), metavar="SUPPLIERS.csv")
@output_option
@country_option
@click.option(
    "--min-roi", metavar="PERCENT", help="A BUY returns at least this percentage of its cost. Default: SCAN_MIN_ROI (30 unless set)."
)
@click.option(
    "--min-profit",
    metavar="AMOUNT",
    help="A BUY earns at least this much per unit Amazon sells (the marketplace's currency). Default: SCAN_MIN_PROFIT (3 unless set).",
)
@click.option(
    "--max-rank",
    metavar="N",
    help="Skip items whose sales rank is above N, or that have none; 0: no limit. Default: SCAN_MAX_SALES_RANK (0 unless set).",
)
@click.option(
    "--prep-cost", metavar="AMOUNT", help="Prep and labelling per unit, on top of the cost. Default: SCAN_PREP_COST (0 unless set)."
)
@click.option(
    "--inbound-per-pound",
    metavar="AMOUNT",
    help="Shipping to Amazon per pound of the package's weight. Default: SCAN_INBOUND_PER_POUND (0 unless set).",
)
@click.option(
    "--fulfillment",
    metavar="|".join(FULFILLMENTS),
    help="FBA (FBA fees, inbound eligibility checked) or FBM. Default: SCAN_FULFILLMENT (FBA unless set).",
)
@click.option(
    "--price-source",
    metavar="|".join(PRICE_SOURCES),
    help="The sale price: the Buy Box (else the lowest FBA offer, else the lowest offer), the lowest FBA offer (else the lowest "
    "offer), or the lowest offer. Default: SCAN_PRICE_SOURCE (buy_box unless set).",
)
@click.option(
    "--keep-amazon/--skip-amazon", default=None, help="Amazon sells the item too: REVIEW, or SKIP (default, unless SCAN_SKIP_AMAZON=false)."
)
@click.option(
    "--keep-restricted/--skip-restricted",
    default=None,
    help="Listing needs approval or is not allowed: REVIEW, or SKIP (default, unless SCAN_SKIP_RESTRICTED=false).",
)
@click.option(
    "--keep-hazmat/--skip-hazmat",
    default=None,
    help="FBA holds the item as dangerous goods (hazmat): REVIEW, or SKIP (default, unless SCAN_SKIP_HAZMAT=false).",
)
@click.option(
    "--cost-column", metavar="NAME", help="The column of the supplier's cost. Default: the first named cost, unit cost, wholesale, ..."
)
@click.option(
    "--pack-column", metavar="NAME", help="The column of the case pack. Default: the first named pack, case pack, pack size, ...; none: 1."
)
@refresh_option
@chunk_option
@restart_option
@click.pass_context
def scan_csv(
    ctx: click.Context,
    input_file: BinaryIO,
    output: Path,
    country: str | None,
    cost_column: str | None,
    pack_column: str | None,
    refresh: bool,
    chunk: int | None,
    restart: bool,
    **profile_options: Any,
) -> None:
    """Scan every row of a supplier's price list (CSV or XLSX) for profit and write OUT.csv with a verdict per row.

    Each row's code (the column named upc, ean, asin, gtin, isbn or jan) is looked up and priced, its fees
    estimated, and its profit and ROI over the row's cost (divided by the case pack, per unit Amazon sells)
    held to the profile; the items that pass are checked for Amazon on the listing, listing restrictions
    and (FBA) inbound eligibility. OUT.csv holds the list's own columns, then the scan's: asin, price,
    fees, profit, roi_percent, max_cost, ... and the verdict, BUY, REVIEW or SKIP, with its reasons. The
    profile is the SCAN_* settings with the options' changes.

    As for `flask asin batch`: each chunk's rows are written and flushed once scanned, and the same command
    run again resumes after them; progress goes to stderr. Exit status 1 when SP-API keeps failing (also
    resumable), 2 for a list that cannot be read (no cost column, say) or a bad setting; a row whose code,
    cost or pack cannot be read is only its row's SKIP.
    """
    service, settings = _service()
    row_scanner = scanner()
    country = country or settings.default_country
    size = _chunk_size(chunk, settings)
    profile = _scan_profile(row_scanner.defaults, profile_options)
    source = _input_name(input_file, output)
    try:
        supplier = read_supplier_upload(input_file, cost_column=cost_column, pack_column=pack_column)
        # Read it all now: a line that cannot be read fails before any lookup.
        inputs = [row_json(row) for row in supplier.rows]
    except SupplierListError as exc:
        raise CliError(f"{source}: {exc}") from None
    columns, total = supplier.columns, len(inputs)
    try:
        done = _open_output(output, next(scan_csv_rows(columns, [])), restart, lambda path: _done_scan_rows(path, columns, inputs))
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    pack = repr(supplier.pack_column) if supplier.pack_column else "none (1)"
    state = f"{len(done)} already in {output}, resuming" if done else f"writing {output}"
    click.echo(
        f"scan: {total} rows from {source} ({supplier.identifier_type} column {supplier.identifier_column!r}, cost "
        f"{supplier.cost_column!r}, pack {pack}), {country}; {state}",
        err=True,
    )
    settings_shown = " ".join(f"{key}={'none' if value is None else value}" for key, value in profile.as_json().items())
    click.echo(f"scan: profile {settings_shown}", err=True)

    steps = JobSteps(service, size=size, retry=ITEM_RETRIES, scanner=row_scanner)
    spec = {"profile": profile.as_json(), "columns": columns}
    progress = _Progress("scan", total, len(done), tty=sys.stderr.isatty())
    counts = _answer_into(
        ctx,
        output,
        inputs,
        progress,
        size=size,
        ask=lambda items: steps.run(items, JobSpec(country, supplier.identifier_type, refresh, source, scan=spec)),
        render=lambda start, entries: _scan_rows(columns, entries),
        outcomes=lambda entry: (entry["Scan"]["verdict"],),
    )
    this_run = sum(counts.values())
    counts.update(done)
    verdicts = ", ".join(f"{counts[verdict]} {verdict}" for verdict in (BUY, REVIEW, SKIP))
    click.echo(f"scan: done: {total} rows in {output}: {verdicts}; this run {this_run}, {progress.seconds:.1f}s", err=True)


# -- flask jobs ------------------------------------------------------------------------------

jobs_cli = AppGroup("jobs", help="Batch jobs: list, show and cancel them; `worker` runs them for JOB_BACKEND=redis.")


def _job_or_exit(service: JobService, job_id: str) -> Job:
    job = service.get(job_id)
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
    service = job_service()
    views = [service.view(job) for job in service.list(limit)]
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
    service = job_service()
    click.echo(json.dumps(service.view(_job_or_exit(service, job_id)), indent=2))


@jobs_cli.command("cancel", short_help="Cancel a queued or running job.")
@click.argument("job_id")
def cancel_job(job_id: str) -> None:
    """Cancel JOB_ID; its answered items stay readable (exit status 1 if there is no such job or it has finished)."""
    service = job_service()
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
    service = job_service()
    if not isinstance(service, RedisJobService):
        # Not an error: PM2's ecosystem starts this app whatever the backend (exit 0 is not restarted).
        click.echo("JOB_BACKEND=sqlite: the service's own gunicorn workers run jobs; no queue worker is needed", err=True)
        return
    click.echo(f"jobs worker: queue {service.queue.name} at {settings.redis_label}", err=True)
    service.work(burst=burst, logging_level=settings.log_level)
