"""fba-backend: the Flask application factory, the `flask` commands' app, the RQ task, and `python app.py`.

Imports point one way: app -> cli -> routes -> services -> utils (config beside them, read by app);
tests/test_layers.py holds every module to it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask import Flask, current_app, has_app_context
from flask.json.provider import DefaultJSONProvider

from cli import EMULATOR_KEY, CliError, asin_cli, jobs_cli
from config import ConfigError, Settings, load_settings
from routes import asin, jobs, metrics, middleware, openapi, scan, system
from routes.errors import register_error_handlers
from services.asin_service import AsinService
from services.cache import build_cache
from services.circuit import RegionCircuits
from services.dataset_fetch import DatasetFetcher
from services.health import UpstreamHealth
from services.jobs import RedisJobService, build_jobs
from services.scan import Scanner
from services.scan_profile import Profile
from services.spapi import OPERATION_PLANS, SpApiClient, is_outage
from services.status import ServiceStatus
from utils.api_keys import ApiKeys, read_digests
from utils.logs import RequestIdFilter, formatter
from utils.marketplaces import resolve_country
from utils.rate_limit import CallLimiter, KeyQuota, Plan, build_store
from utils.redaction import SecretFilter
from utils.retry import RetryPolicy

__version__ = "1.0.0"

log = logging.getLogger("fba_backend")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def configure_logging(settings: Settings) -> None:
    """One line per event on stdout, at LOG_LEVEL, with secrets masked."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_fba_backend", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stdout)
        handler._fba_backend = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(formatter(settings.log_format))
    for old in [f for f in handler.filters if isinstance(f, SecretFilter | RequestIdFilter)]:
        handler.removeFilter(old)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(SecretFilter(settings.secrets()))
    root.setLevel(settings.log_level)
    # httpx logs every request URL at INFO; keep that for DEBUG. The library logs request
    # headers (the access token among them) at DEBUG: never let it.
    logging.getLogger("httpx").setLevel(logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("sp_api").setLevel(logging.INFO)


def build_limiter(settings: Settings) -> CallLimiter:
    """The SP-API call limiter: RATE_LIMIT_BACKEND's store, the SP_API_RATE/SP_API_BURST plan, its margin and recovery."""
    store = build_store(
        settings.rate_limit_backend,
        data_dir=settings.data_dir,
        redis_url=settings.redis_url,
        redis_label=settings.redis_label,
        window_calls=settings.rate_limit_calls,
        window_seconds=settings.rate_limit_window,
    )
    return CallLimiter(
        window_calls=settings.rate_limit_calls,
        window_seconds=settings.rate_limit_window,
        default_plan=Plan(settings.sp_api_rate, settings.sp_api_burst),
        operation_plans=OPERATION_PLANS,
        margin=settings.sp_api_rate_margin,
        recovery_seconds=settings.sp_api_pace_recovery,
        store=store,
    )


def build_spapi(
    settings: Settings, limiter: CallLimiter, health: UpstreamHealth, *, sleep: Callable[[float], None] = time.sleep
) -> SpApiClient:
    """The SP-API client: its credentials, endpoint, retry policy, timeout and circuits, paced by `limiter`."""
    return SpApiClient(
        credentials=settings.credentials(),
        endpoint=settings.sp_api_endpoint,
        token_url=settings.token_url(),
        limiter=limiter,
        retry_policy=RetryPolicy(settings.max_retries, settings.retry_delay_base, settings.retry_delay_max),
        timeout=settings.request_timeout,
        health=health,
        circuits=RegionCircuits(failures=settings.circuit_failures, cooldown=settings.circuit_cooldown, is_outage=is_outage),
        sleep=sleep,
    )


def scan_defaults(settings: Settings) -> Profile:
    """A scan's default profile: the SCAN_* settings."""
    return Profile(
        min_roi_percent=Decimal(str(settings.scan_min_roi)),
        min_profit=Decimal(str(settings.scan_min_profit)),
        max_sales_rank=settings.scan_max_sales_rank or None,
        skip_amazon_on_listing=settings.scan_skip_amazon,
        skip_restricted=settings.scan_skip_restricted,
        skip_hazmat=settings.scan_skip_hazmat,
        prep_cost=Decimal(str(settings.scan_prep_cost)),
        inbound_per_pound=Decimal(str(settings.scan_inbound_per_pound)),
        fulfillment=settings.scan_fulfillment,
        price_source=settings.scan_price_source,
    )


def build_services(app: Flask, settings: Settings) -> None:
    """Build the limiter (and the API keys' quota, in its store), SP-API client and ASIN service once; keep them on app.extensions."""
    health = UpstreamHealth()
    limiter = build_limiter(settings)
    limiter.snapshot()  # opens the store now (tables, connection), not on the first call
    # In the limiter's store, so every worker and host counts a key's requests against one quota.
    key_quota = KeyQuota(limiter.store, settings.api_key_rate) if settings.api_key_rate > 0 else None
    spapi = build_spapi(settings, limiter, health)
    cache = build_cache(
        backend=settings.cache_backend,
        data_dir=settings.data_dir,
        redis_url=settings.redis_url,
        ttl=settings.cache_ttl,
        not_found_ttl=settings.cache_not_found_ttl,
    )
    spapi.warm_up(resolve_country(settings.default_country))
    datasets = DatasetFetcher(spapi, cache, seller_id=settings.effective_seller_id(), ttls=settings.dataset_ttls())
    service = AsinService(spapi, cache, max_workers=settings.max_workers, datasets=datasets)
    scanner = Scanner(service, datasets, scan_defaults(settings))
    job_service = build_jobs(settings, service, part_task=f"{__name__}.{run_job_part.__name__}", scanner=scanner)
    status = ServiceStatus(
        mode=settings.mode,
        version=__version__,
        endpoint=settings.endpoint_label,
        upstream=health,
        circuits=spapi.circuits,
        limiter=limiter,
        cache=cache,
        jobs=job_service,
    )
    app.extensions.update(
        asin_service=service, scanner=scanner, jobs=job_service, spapi=spapi, limiter=limiter, key_quota=key_quota, status=status
    )


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing NaN, Infinity, numbers beyond a float and nesting too deep to parse (a 400, not a 500)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse `s`; ValueError for NaN/Infinity or nesting deeper than Python can recurse."""
        try:
            return super().loads(s, parse_constant=_not_json, parse_float=_finite, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is beyond the range of a number")
    return value


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from `settings` (default: the environment and `.env`)."""
    settings = settings or load_settings()
    configure_logging(settings)
    app = Flask(__name__)
    app.json = StrictJSONProvider(app)
    app.config.update(SETTINGS=settings, VERSION=__version__, JSON_SORT_KEYS=False)
    app.json.sort_keys = False
    build_services(app, settings)
    metrics.init_app(app)
    keys = ApiKeys(settings.api_keys, read_digests(settings.api_keys_file) if settings.api_keys_file else ())
    middleware.install(app, settings, keys)
    app.register_blueprint(asin.bp)
    app.register_blueprint(system.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(scan.bp)
    register_error_handlers(app)
    app.cli.add_command(asin_cli)
    app.cli.add_command(jobs_cli)
    if not keys.enabled and settings.mode == "live" and settings.host not in LOOPBACK_HOSTS:
        log.warning(
            "!!! NO API KEYS: fba-backend listens on %s in live mode and anyone who reaches it can spend the seller's "
            "SP-API quota. Set API_KEYS or API_KEYS_FILE. !!!",
            settings.host,
        )
    if settings.mode == "emulator" and not settings.sp_api_endpoint:
        log.warning("no SP-API credentials and no SP_API_ENDPOINT: calls will go to Amazon and fail; use `make run` to start the emulator")
    log.info(
        "fba-backend %s ready: mode=%s endpoint=%s plan=%s/s burst %s, window %s calls/%ss, limiter %s, cache %s",
        __version__,
        settings.mode,
        settings.endpoint_label,
        settings.sp_api_rate,
        settings.sp_api_burst,
        settings.rate_limit_calls,
        settings.rate_limit_window,
        settings.rate_limit_backend,
        settings.cache_backend,
    )
    return app


def create_cli_app() -> Flask:
    """The app for `flask` commands (`.flaskenv`): the service's, on the bundled SP-API emulator when nothing else is configured."""
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
    # unless a command moves it (cli._quiet_logs).
    with contextlib.redirect_stdout(sys.stderr):
        app = create_app(settings)
    for handler in root.handlers:
        if handler not in earlier and isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
            handler.setStream(sys.stdout)
    if emulator is not None:
        app.extensions[EMULATOR_KEY] = emulator
    return app


# The app of a process that runs RQ parts outside `flask jobs worker` (a plain `rq worker`): built once.
_task_app: Flask | None = None


def run_job_part(job_id: str, start: int, end: int) -> int:
    """RQ task: answer items [start, end) of job `job_id` with this process's app (`flask jobs worker`'s, or one built once)."""
    global _task_app
    if has_app_context():
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    else:
        _task_app = _task_app or create_app()
        app = _task_app
    service = app.extensions["jobs"]
    if not isinstance(service, RedisJobService):
        raise RuntimeError("job parts are queued only with JOB_BACKEND=redis; this process has JOB_BACKEND=sqlite")
    return service.run_part(job_id, start, end)


def main() -> int:
    """`python app.py`: start the bundled emulator when no credentials are set, then serve with gunicorn."""
    from gunicorn.app.wsgiapp import run

    sys.argv = [sys.argv[0], "-c", "gunicorn.conf.py", "app:create_app()"]
    try:
        load_settings()
    except ConfigError as exc:
        print(f"fba-backend: configuration error: {exc}", file=sys.stderr)
        return 2
    run()  # serves until stopped; gunicorn exits the process itself
    return 0


if __name__ == "__main__":
    sys.exit(main())
