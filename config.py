"""Settings: the only module that reads the environment (and `.env`).

`load_settings()` returns one frozen, typed `Settings`; every value is range-checked
at start-up and a bad one raises `ConfigError` whose message is one line naming the
variable. Tests build `Settings(...)` directly and pass it to `create_app`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values

from utils import sandbox
from utils.api_keys import ApiKeyError, read_digests
from utils.marketplaces import resolve_country
from utils.redaction import mask_url_password

SECRET_FIELDS = ("lwa_client_secret", "sp_api_refresh_token")
CREDENTIAL_FIELDS = ("lwa_app_id", *SECRET_FIELDS)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
RATE_LIMIT_BACKENDS = ("memory", "sqlite", "redis")
CACHE_BACKENDS = ("sqlite", "redis", "none")
JOB_BACKENDS = ("sqlite", "redis")
LOG_FORMATS = ("text", "json")


class ConfigError(ValueError):
    """A setting has a value the service cannot start with."""


@dataclass(frozen=True)
class Settings:
    """Every effective setting of the service (env variable = field name upper-cased)."""

    # Rate limiting (the original README): at most RATE_LIMIT_CALLS SP-API calls in any
    # sliding RATE_LIMIT_WINDOW seconds, across operations.
    rate_limit_calls: int = 20
    rate_limit_window: float = 60.0
    request_timeout: float = 30.0
    # The operation's usage plan. Catalog Items 2022-04-01: rate 2 requests/s, burst 2.
    sp_api_rate: float = 2.0
    sp_api_burst: int = 2
    # Pace this fraction under the plan: our clock and Amazon's bucket drift.
    sp_api_rate_margin: float = 0.05
    # After a 429 an operation's pace halves; each SP_API_PACE_RECOVERY seconds without
    # another 429 it steps up by a quarter, back to the plan.
    sp_api_pace_recovery: float = 60.0
    # Where the limiter keeps its state: memory (this process), sqlite (a file under DATA_DIR,
    # shared by every worker on the machine) or redis (REDIS_URL, shared by every host).
    rate_limit_backend: str = "sqlite"
    # Results cache: sqlite (under DATA_DIR, shared by workers), redis or none; successes are
    # kept CACHE_TTL seconds, NOT_FOUND answers CACHE_NOT_FOUND_TTL.
    cache_backend: str = "sqlite"
    cache_ttl: float = 86400.0
    cache_not_found_ttl: float = 3600.0
    # How long each dataset `include` adds is kept in that cache (seconds): prices and offers move
    # within the hour; fees (by ASIN, price and fulfilment) and inbound eligibility change rarely.
    pricing_ttl: float = 3600.0
    offers_ttl: float = 3600.0
    fees_ttl: float = 604800.0
    restrictions_ttl: float = 86400.0
    eligibility_ttl: float = 604800.0
    # Files of the sqlite limiter and cache.
    data_dir: str = "data"
    # Redis for RATE_LIMIT_BACKEND=redis and CACHE_BACKEND=redis (a password in it is a secret).
    redis_url: str = field(default="redis://127.0.0.1:6379/0", repr=False)
    # Circuit breaker per SP-API region: after CIRCUIT_FAILURES failed lookups in a row (after
    # retries: unreachable, 5xx, timeouts) calls fail fast for CIRCUIT_COOLDOWN seconds.
    circuit_failures: int = 5
    circuit_cooldown: float = 30.0
    # Batch jobs: sqlite (under DATA_DIR; run by the service's own workers) or redis (REDIS_URL;
    # queued with RQ and run by `flask jobs worker` processes on any host). A job holds at most
    # MAX_JOB_SIZE items; jobs untouched for JOB_RETENTION seconds are purged.
    job_backend: str = "sqlite"
    max_job_size: int = 100_000
    job_retention: float = 604_800.0
    # Batch processing.
    max_batch_size: int = 100
    max_workers: int = 5
    # Retries: delay before retry n is RETRY_DELAY_BASE ** n seconds (plus jitter),
    # capped at RETRY_DELAY_MAX.
    max_retries: int = 3
    retry_delay_base: float = 2.0
    retry_delay_max: float = 60.0
    # Service.
    log_level: str = "INFO"
    # text (one line per event, for a terminal) or json (one JSON object per line, with the request id).
    log_format: str = "text"
    # API keys: comma-separated keys, and/or a file of SHA-256 hex digests of keys, one per line.
    # With none, anyone who reaches the service may spend the quota.
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    api_keys_file: str = ""
    # Requests per second each API key may make (0: no per-key quota).
    api_key_rate: float = 0.0
    # Largest request body accepted (bytes); larger ones get 413.
    max_content_length: int = 1_048_576
    # Largest job CSV upload accepted (bytes); larger ones get 413.
    max_upload_size: int = 104_857_600
    # Origins allowed to call the API from a browser (comma-separated); empty: CORS off.
    cors_origins: tuple[str, ...] = ()
    port: int = 5000
    host: str = "127.0.0.1"
    # gunicorn workers (gunicorn's own variable name) and threads per worker. Workers share the
    # limiter unless RATE_LIMIT_BACKEND=memory, which is for one worker only.
    web_concurrency: int = 1
    gunicorn_threads: int = 16
    default_country: str = "US"
    # SP-API credentials (python-amazon-sp-api's own variable names).
    lwa_app_id: str = ""
    lwa_client_secret: str = field(default="", repr=False)
    sp_api_refresh_token: str = field(default="", repr=False)
    # Where calls go: base URL for every region, and the full LWA token URL.
    sp_api_endpoint: str = ""
    lwa_endpoint: str = ""
    # Port of the bundled emulator that `make run` starts when no credentials are set.
    emulator_port: int = sandbox.DEFAULT_PORT
    # The seller's merchant token (Seller Central > Settings > Merchant Token): Listings Restrictions'
    # sellerId. Empty: the emulator's seller in emulator mode; in live mode restrictions fail SELLER_ID_MISSING.
    seller_id: str = ""
    # A scan's default profile (each request may override it): the gates a supplier row must pass to be a
    # BUY, and the costs besides the supplier's (money in the marketplace's currency, per unit sold).
    scan_min_roi: float = 30.0
    scan_min_profit: float = 3.0
    scan_max_sales_rank: int = 0  # 0: no limit
    scan_skip_amazon: bool = True
    scan_skip_restricted: bool = True
    scan_skip_hazmat: bool = True
    scan_prep_cost: float = 0.0
    scan_inbound_per_pound: float = 0.0
    scan_fulfillment: str = "FBA"
    scan_price_source: str = "buy_box"

    @property
    def has_credentials(self) -> bool:
        """True when any SP-API credential is configured: the service then calls Amazon."""
        return any(getattr(self, name) for name in CREDENTIAL_FIELDS)

    @property
    def mode(self) -> str:
        """`live` whenever credentials are set, else `emulator` (whatever SP_API_ENDPOINT says)."""
        return "live" if self.has_credentials else "emulator"

    @property
    def redis_label(self) -> str:
        """REDIS_URL with any password masked, for /config, /health and logs."""
        return mask_url_password(self.redis_url)

    @property
    def endpoint_label(self) -> str:
        """Where SP-API calls go, for /health, /config and the start-up log."""
        return self.sp_api_endpoint or "https://sellingpartnerapi-{na,eu,fe}.amazon.com"

    def credentials(self) -> dict[str, str]:
        """The LWA credentials to use: the configured ones, or the emulator's in emulator mode."""
        if self.has_credentials:
            return {
                "lwa_app_id": self.lwa_app_id,
                "lwa_client_secret": self.lwa_client_secret,
                "refresh_token": self.sp_api_refresh_token,
            }
        return {
            "lwa_app_id": sandbox.CLIENT_ID,
            "lwa_client_secret": sandbox.CLIENT_SECRET,
            "refresh_token": sandbox.REFRESH_TOKEN,
        }

    def dataset_ttls(self) -> dict[str, float]:
        """Each dataset's cache TTL in seconds (0: not cached), by the name `include` uses."""
        return {
            "pricing": self.pricing_ttl,
            "offers": self.offers_ttl,
            "fees": self.fees_ttl,
            "restrictions": self.restrictions_ttl,
            "eligibility": self.eligibility_ttl,
        }

    def effective_seller_id(self) -> str:
        """The merchant token to send: SELLER_ID, else the emulator's seller in emulator mode, else empty."""
        if self.seller_id or self.has_credentials:
            return self.seller_id
        return sandbox.SELLER_ID

    def token_url(self) -> str:
        """The LWA token URL: LWA_ENDPOINT, else the emulator's beside SP_API_ENDPOINT, else Amazon's."""
        if self.lwa_endpoint:
            return self.lwa_endpoint
        if self.sp_api_endpoint and not self.has_credentials:
            return self.sp_api_endpoint.rstrip("/") + "/auth/o2/token"
        return "https://api.amazon.com/auth/o2/token"

    def public_view(self) -> dict[str, Any]:
        """Every setting by its variable name, with each credential shown only as set / not set."""
        view = {name.upper(): value for name, value in asdict(self).items()}
        for name in CREDENTIAL_FIELDS:
            view[name.upper()] = "set" if getattr(self, name) else "not set"
        view["REDIS_URL"] = self.redis_label
        view["API_KEYS"] = f"{len(self.api_keys)} set" if self.api_keys else "not set"
        view["CORS_ORIGINS"] = ",".join(self.cors_origins)
        return view

    def secrets(self) -> list[str]:
        """Values that must never appear in a log line or response."""
        password = urlsplit(self.redis_url).password
        return [s for s in (self.lwa_client_secret, self.sp_api_refresh_token, password, *self.api_keys) if s]


@dataclass(frozen=True)
class _Parser:
    """Turns a variable's text into its value; `expect` says what a good value looks like."""

    parse: Callable[[str], Any]
    expect: str


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _integer(minimum: int) -> _Parser:
    def parse(raw: str) -> int:
        value = int(raw)
        if value < minimum:
            raise ValueError
        return value

    return _Parser(parse, f"an integer >= {minimum}")


def _number(minimum: float, maximum: float | None = None, *, exclusive_min: bool = False) -> _Parser:
    def parse(raw: str) -> float:
        value = float(raw)
        too_small = value <= minimum if exclusive_min else value < minimum
        if too_small or (maximum is not None and value > maximum) or value != value:
            raise ValueError
        return value

    low = f"> {minimum}" if exclusive_min else f">= {minimum}"
    return _Parser(parse, f"a number {low}" + (f" and <= {maximum}" if maximum is not None else ""))


def _choice(options: tuple[str, ...], normalize: Callable[[str], str] = str.upper) -> _Parser:
    def parse(raw: str) -> str:
        value = normalize(raw.strip())
        if value not in options:
            raise ValueError
        return value

    return _Parser(parse, "one of " + ", ".join(options))


def _redis_url(raw: str) -> str:
    value = raw.strip()
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError
    return value


def _url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise ValueError
    return value


def _nonempty(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError
    return value


# A merchant token: "A" and then 9 to 19 upper-case letters and digits (Amazon's are 13 or 14 long;
# the bundled emulator's sellerId check is the same pattern).
_MERCHANT_TOKEN = re.compile(r"A[0-9A-Z]{9,19}")


def _merchant_token(raw: str) -> str:
    value = raw.strip()
    if not _MERCHANT_TOKEN.fullmatch(value):
        raise ValueError
    return value


def _api_keys(raw: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    if any(len(k) < 16 for k in keys):
        raise ValueError
    return keys


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    if any(o != "*" and not o.startswith(("http://", "https://")) for o in origins):
        raise ValueError
    return origins


_TEXT = _Parser(str.strip, "text")

PARSERS: dict[str, _Parser] = {
    "rate_limit_calls": _integer(1),
    "rate_limit_window": _number(0, exclusive_min=True),
    "request_timeout": _number(0, exclusive_min=True),
    "sp_api_rate": _number(0, exclusive_min=True),
    "sp_api_burst": _integer(1),
    "sp_api_rate_margin": _number(0, 0.5),
    "sp_api_pace_recovery": _number(0, exclusive_min=True),
    "circuit_failures": _integer(1),
    "circuit_cooldown": _number(0, exclusive_min=True),
    "rate_limit_backend": _choice(RATE_LIMIT_BACKENDS, str.lower),
    "cache_backend": _choice(CACHE_BACKENDS, str.lower),
    "cache_ttl": _number(0, exclusive_min=True),
    "cache_not_found_ttl": _number(0),
    "pricing_ttl": _number(0),
    "offers_ttl": _number(0),
    "fees_ttl": _number(0),
    "restrictions_ttl": _number(0),
    "eligibility_ttl": _number(0),
    "data_dir": _Parser(_nonempty, "a directory path"),
    "redis_url": _Parser(_redis_url, "a redis://, rediss:// or unix:// URL"),
    "job_backend": _choice(JOB_BACKENDS, str.lower),
    "max_job_size": _integer(1),
    "job_retention": _number(0, exclusive_min=True),
    "max_batch_size": _integer(1),
    "max_workers": _integer(1),
    "max_retries": _integer(0),
    "retry_delay_base": _number(1),
    "retry_delay_max": _number(0),
    "log_level": _choice(LOG_LEVELS),
    "log_format": _choice(LOG_FORMATS, str.lower),
    "api_keys": _Parser(_api_keys, "comma-separated keys of at least 16 characters"),
    "api_keys_file": _TEXT,
    "api_key_rate": _number(0),
    "max_content_length": _integer(1024),
    "max_upload_size": _integer(1024),
    "cors_origins": _Parser(_origins, "comma-separated origins like https://app.example.com, or *"),
    "port": _integer(1),
    "host": _TEXT,
    "web_concurrency": _integer(1),
    "gunicorn_threads": _integer(1),
    "default_country": _Parser(lambda raw: resolve_country(raw).code, "a supported marketplace country code"),
    "lwa_app_id": _TEXT,
    "lwa_client_secret": _TEXT,
    "sp_api_refresh_token": _TEXT,
    "sp_api_endpoint": _Parser(_url, "an http:// or https:// URL"),
    "lwa_endpoint": _Parser(_url, "an http:// or https:// URL"),
    "emulator_port": _integer(1),
    "seller_id": _Parser(_merchant_token, "a merchant token: A and 9 to 19 upper-case letters or digits"),
    "scan_min_roi": _number(-100, 1e9),
    "scan_min_profit": _number(0, 1e9),
    "scan_max_sales_rank": _integer(0),
    "scan_skip_amazon": _Parser(lambda raw: _BOOLEANS[raw.strip().lower()], "true or false"),
    "scan_skip_restricted": _Parser(lambda raw: _BOOLEANS[raw.strip().lower()], "true or false"),
    "scan_skip_hazmat": _Parser(lambda raw: _BOOLEANS[raw.strip().lower()], "true or false"),
    "scan_prep_cost": _number(0, 1e9),
    "scan_inbound_per_pound": _number(0, 1e9),
    "scan_fulfillment": _choice(("FBA", "FBM")),
    "scan_price_source": _choice(("buy_box", "lowest_fba", "lowest_offer"), str.lower),
}


def load_settings(environ: Mapping[str, str] | None = None, dotenv_path: str | None = ".env") -> Settings:
    """Read settings from `environ` (default os.environ) over the `.env` file; raise ConfigError on a bad value."""
    source: dict[str, str | None] = {}
    if dotenv_path and os.path.exists(dotenv_path):
        source.update(dotenv_values(dotenv_path))
    if environ is None:
        # python-amazon-sp-api silently replaces the marketplace we pass with this one (and
        # fails at import on an unknown value): the service always names the marketplace.
        os.environ.pop("SP_API_DEFAULT_MARKETPLACE", None)
        environ = os.environ
    source.update(environ)

    values: dict[str, Any] = {}
    for spec in fields(Settings):
        name = spec.name.upper()
        raw = source.get(name)
        if raw is None or raw.strip() == "":
            continue
        parser = PARSERS[spec.name]
        try:
            values[spec.name] = parser.parse(raw)
        except (ValueError, LookupError) as exc:
            shown = "<hidden>" if spec.name in (*SECRET_FIELDS, "redis_url", "api_keys") else repr(raw)
            raise ConfigError(f"{name} must be {parser.expect} (got {shown})") from exc
    credentials = {name: values.get(name, "") for name in CREDENTIAL_FIELDS}
    if any(credentials.values()) and not all(credentials.values()):
        missing = ", ".join(name.upper() for name, value in credentials.items() if not value)
        raise ConfigError(
            f"{missing} must be set too: SP-API credentials are LWA_APP_ID, LWA_CLIENT_SECRET and SP_API_REFRESH_TOKEN together"
        )
    if values.get("api_keys_file"):
        try:
            read_digests(values["api_keys_file"])
        except ApiKeyError as exc:
            raise ConfigError(str(exc)) from None
    return Settings(**values)
