"""The only module that touches python-amazon-sp-api.

It calls Catalog Items at version 2022-04-01 (the library's default is 2020-12-01),
admits every request through the rate limiter at the moment it goes on the wire,
retries what is worth retrying (services/errors.py's failure policy), and turns the library's
exceptions (SellingApiException subclasses, LWA's AuthorizationError, httpx's transport errors)
into ServiceError.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import certifi
import httpx
import pybreaker
from sp_api.api import CatalogItems, FbaInboundEligibility, ListingsRestrictions, ProductFees, Products
from sp_api.api.catalog_items.catalog_items import CatalogItemsVersion
from sp_api.api.products.products import ProductsVersion
from sp_api.auth import AccessTokenClient, AccessTokenResponse
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base import Marketplaces
from sp_api.base._transport_httpx import HttpxTransport
from sp_api.base.exceptions import (
    SellingApiException,
    SellingApiForbiddenException,
    SellingApiGatewayTimeoutException,
    SellingApiNotFoundException,
    SellingApiRequestThrottledException,
    SellingApiServerException,
    SellingApiTemporarilyUnavailableException,
    get_exception_for_code,
)

from services import errors
from services.circuit import RegionCircuits
from services.errors import ServiceError
from services.health import UpstreamHealth
from utils import metrics
from utils.marketplaces import Marketplace
from utils.rate_limit import CallLimiter, Plan, RateLimited
from utils.retry import RetryPolicy, call_with_retries

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

CATALOG_VERSION = CatalogItemsVersion.V_2022_04_01
# Only the datasets the product facts need (the default would be summaries alone).
INCLUDED_DATA = ["summaries", "salesRanks", "identifiers", "images", "dimensions", "productTypes", "relationships"]
# searchCatalogItems takes at most 20 identifiers and pageSize at most 20 (Catalog Items 2022-04-01 model).
SEARCH_MAX_IDENTIFIERS = 20


# Each operation's documented usage plan (the models in shared/reference/), beside Catalog Items' own,
# which SP_API_RATE/SP_API_BURST configure. SP-API's x-amzn-RateLimit-Limit refines the rate as it answers.
OPERATION_PLANS = {
    "getCompetitivePricing": Plan(0.5, 1),
    "getItemOffers": Plan(0.5, 1),
    "getItemOffersBatch": Plan(0.1, 1),  # lowered from 0.5 in July 2023
    "getMyFeesEstimates": Plan(0.5, 1),
    "getMyFeesEstimateForASIN": Plan(1.0, 2),
    "getListingsRestrictions": Plan(5.0, 10),
    "getItemEligibilityPreview": Plan(1.0, 1),
}
# (method, path pattern) -> operation: the limiter's bucket, the metrics' label and the log's name of a request.
_OPERATIONS = (
    ("GET", re.compile(r"/catalog/2022-04-01/items"), "searchCatalogItems"),
    ("GET", re.compile(r"/catalog/2022-04-01/items/[^/]*"), "getCatalogItem"),
    ("GET", re.compile(r"/products/pricing/v0/competitivePrice"), "getCompetitivePricing"),
    ("GET", re.compile(r"/products/pricing/v0/items/[^/]+/offers"), "getItemOffers"),
    ("POST", re.compile(r"/batches/products/pricing/v0/itemOffers"), "getItemOffersBatch"),
    ("POST", re.compile(r"/products/fees/v0/items/[^/]+/feesEstimate"), "getMyFeesEstimateForASIN"),
    ("POST", re.compile(r"/products/fees/v0/feesEstimate"), "getMyFeesEstimates"),
    ("GET", re.compile(r"/listings/2021-08-01/restrictions"), "getListingsRestrictions"),
    ("GET", re.compile(r"/fba/inbound/v1/eligibility/itemPreview"), "getItemEligibilityPreview"),
)
# The library's client class (and its version) of each SP-API family the service calls.
FAMILIES: dict[str, tuple[type, dict[str, Any]]] = {
    "catalog": (CatalogItems, {"version": CATALOG_VERSION}),
    "pricing": (Products, {"version": ProductsVersion.V0}),  # Products() alone is v0 today; say so
    "fees": (ProductFees, {}),
    "restrictions": (ListingsRestrictions, {}),
    "eligibility": (FbaInboundEligibility, {}),
}


def operation_of(method: str, url: str) -> str:
    """The SP-API operation a request of the library calls (the path's last resort: "unknown")."""
    path = urlsplit(url).path.rstrip("/")
    for verb, pattern, operation in _OPERATIONS:
        if verb == method.upper() and pattern.fullmatch(path):
            return operation
    return "unknown"


class TokenStore:
    """LWA access tokens, one per (token URL, refresh token) per process, fetched under a lock.

    The library's own cache is a module-level TTLCache that is not thread-safe (its issue
    #743) and ignores `expires_in`; concurrent first calls would each fetch a token.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[dict[str, Any], float]] = {}
        self.fetches = 0

    def get(self, key: str, fetch: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The cached token for `key`, fetching a new one (once, for all threads) when absent or stale."""
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] > self._clock():
                return cached[0]
            token = fetch()
            self.fetches += 1
            # Renew a minute early so a token never expires on the wire.
            lifetime = float(token.get("expires_in") or 3600)
            self._tokens[key] = (token, self._clock() + max(lifetime - 60, lifetime / 2))
            return token

    def invalidate(self, key: str, refused: str | None) -> None:
        """Forget the token for `key` if it is `refused` (the access token SP-API refused): the next call fetches a new one.

        Threads that sent the same stale token get their 403s together; the first one's new token stays.
        """
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached[0].get("access_token") == refused:
                del self._tokens[key]


class _TokenClient(AccessTokenClient):
    """The library's LWA client, posting to our token URL and caching in our TokenStore."""

    def __init__(self, *, store: TokenStore, token_url: str, timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store = store
        self._token_url = token_url
        self._transport = HttpxTransport(timeout=timeout, verify=kwargs.get("verify", True))
        self.last_access_token: str | None = None

    def _request(self, url: str, data: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        response = self._transport.request("POST", url, data=data, headers=headers)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            body = body if isinstance(body, dict) else {}
            raise AuthorizationError(
                body.get("error", f"http_{response.status_code}"),
                body.get("error_description", "LWA answered without an access token"),
                response.status_code,
            )
        return body

    def get_auth(self) -> AccessTokenResponse:
        """The access token, from the shared store."""
        token = self._store.get(self.cache_key, lambda: self._request(self._token_url, self.data, self.headers))
        # A client serves one thread: the token its last request carried, in case SP-API refuses it.
        self.last_access_token = token.get("access_token")
        return AccessTokenResponse(**token)

    @property
    def cache_key(self) -> str:
        """Store key: the token URL and a hash of the refresh token (never the token itself)."""
        return self._token_url + "|" + self._get_cache_key()


class Lanes:
    """At most a burst's worth of calls per operation in flight from this process; its other threads wait their turn here.

    Slots are reserved first come, first served across every worker, so a process that sent all of
    its threads to the limiter at once would reserve far ahead for itself, and callers whose slot lies
    beyond REQUEST_TIMEOUT would be refused (THROTTLED) although the batch only has to wait. Holding
    each worker to the plan's burst keeps the shared queue short and fair; a deep queue then slows
    answers instead of failing them. Each operation has its own lane, so operations run side by side.
    """

    def __init__(self, limiter: CallLimiter) -> None:
        self._limiter = limiter
        self._lock = threading.Lock()
        self._lanes: dict[str, threading.BoundedSemaphore] = {}

    def lane(self, key: str) -> threading.BoundedSemaphore:
        """The lane of limiter key `key` (region/operation), as wide as its plan's burst when first used."""
        with self._lock:
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = threading.BoundedSemaphore(max(1, self._limiter.plan(key).burst))
            return lane


@dataclass
class CallCount:
    """SP-API requests that went on the wire for one lookup (retries and pages included)."""

    sent: int = 0


class CallLedger:
    """SP-API calls by operation, and the seconds they waited for their slot, of everything a piece of work did.

    `recording()` makes a ledger the current one for the calling context; the service's pools run their
    tasks in copies of the caller's context, so the calls of every thread the work spreads to are counted.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.waited: dict[str, float] = {}

    def add(self, operation: str, waited: float) -> None:
        """Count one call of `operation` that waited `waited` seconds for its slot."""
        with self._lock:
            self.calls[operation] = self.calls.get(operation, 0) + 1
            self.waited[operation] = self.waited.get(operation, 0.0) + waited

    def take(self) -> CallLedger:
        """A ledger of what this one counted so far, which starts again from nothing."""
        taken = CallLedger()
        with self._lock:
            taken.calls, self.calls = self.calls, {}
            taken.waited, self.waited = self.waited, {}
        return taken

    def absorb(self, other: CallLedger) -> None:
        """Add what `other` counted to this ledger."""
        with self._lock:
            for operation, n in other.calls.items():
                self.calls[operation] = self.calls.get(operation, 0) + n
            for operation, seconds in other.waited.items():
                self.waited[operation] = self.waited.get(operation, 0.0) + seconds

    @contextlib.contextmanager
    def recording(self) -> Iterator[CallLedger]:
        """Count the calls made in this context (and the pool tasks it starts) in this ledger, while the block runs."""
        token = _LEDGER.set(self)
        try:
            yield self
        finally:
            _LEDGER.reset(token)


_LEDGER: contextvars.ContextVar[CallLedger | None] = contextvars.ContextVar("spapi_call_ledger", default=None)


class _GuardedTransport:
    """The library's httpx transport with our limiter in front and a status check behind.

    The limiter has the last word as the request goes on the wire (httpcore traces the request
    headers about to be sent): a call held up after admission, by the client's own work or by
    connecting, can be too late for its slot (see "Late callers" in utils/rate_limit/limiter.py).
    """

    def __init__(self, inner: HttpxTransport, limiter: CallLimiter, lanes: Lanes, region: str, max_wait: float) -> None:
        self._inner = inner
        self._limiter = limiter
        self._lanes = lanes
        self._region = region
        self._max_wait = max_wait
        self.count = CallCount()
        # The request in flight's admission (a transport serves one thread: one request at a time).
        self._admission = None
        self._sent_at = 0.0
        # The library's transport passes no request extensions; a hook on its httpx client adds the trace.
        inner._client.event_hooks["request"].append(self._trace_request)

    def _trace_request(self, request: httpx.Request) -> None:
        request.extensions["trace"] = self._trace

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        if event.endswith(".send_request_headers.started") and self._admission is not None:
            # Connected, the request about to be written: the limiter's last look (and a new slot if it is too late).
            self._admission = self._limiter.leaving(self._admission)
            self._sent_at = self._limiter.now()

    def _send(self, operation: str, key: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Admit the call through the limiter, send it, and let the limiter learn from the answer."""
        self._admission = self._limiter.admit(key, self._max_wait)
        self._sent_at = self._limiter.now()
        self.count.sent += 1
        try:
            # Its time includes the wait for a new slot, in the rare case the call was too late at the wire.
            response = metrics.time_spapi_call(operation, lambda: self._inner.request(method, url, **kwargs))
        finally:
            metrics.observe_limiter_wait(operation, self._admission.waited)
            ledger = _LEDGER.get()
            if ledger is not None:
                ledger.add(operation, self._admission.waited)
            self._admission = None
        # The plan follows x-amzn-RateLimit-Limit, and a 429 slows the pace for every worker.
        self._limiter.observe(
            key, status=response.status_code, rate_limit_header=response.headers.get("x-amzn-RateLimit-Limit"), sent_at=self._sent_at
        )
        return response

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Wait for this process's lane and the limiter, send, and raise on an error status whose body the library would miss."""
        headers = kwargs.get("headers") or {}
        # The library derives Host by slicing "https://" off the endpoint; httpx sets it right.
        kwargs["headers"] = {k: v for k, v in headers.items() if k.lower() != "host"}
        operation = operation_of(method, url)
        key = f"{self._region}/{operation}"
        with self._lanes.lane(key):
            response = self._send(operation, key, method, url, **kwargs)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            status = response.status_code
            listed = isinstance(body, dict) and body.get("errors")
            exception = get_exception_for_code(status)
            # The library reads a non-JSON error page as an empty success, and raises a status it has no class
            # for (401, 422, 502, ...) as its catch-all SellingApiException, whose code says 999 whatever the status.
            if not listed or exception is SellingApiException:
                error = body["errors"] if listed else [{"code": str(status), "message": f"HTTP {status} without an SP-API error body"}]
                failure = exception(error, headers=response.headers)
                failure.code = status
                raise failure
        return response

    def close(self) -> None:
        """Close the underlying httpx client."""
        self._inner.close()


class SpApiClient:
    """Catalog Items calls with rate limiting, retries and error translation; safe to share between threads."""

    def __init__(
        self,
        *,
        credentials: dict[str, str],
        endpoint: str,
        token_url: str,
        limiter: CallLimiter,
        retry_policy: RetryPolicy,
        timeout: float,
        health: UpstreamHealth,
        circuits: RegionCircuits,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._credentials = dict(credentials)
        self._endpoint = endpoint
        self._limiter = limiter
        self._retry_policy = retry_policy
        self._timeout = timeout
        self._health = health
        self._sleep = sleep
        self.tokens = TokenStore()
        self.circuits = circuits
        self._lanes = Lanes(limiter)
        self._token_client = functools.partial(_TokenClient, store=self.tokens, token_url=token_url, timeout=timeout)
        # A library Client keeps per-request state (method, transport): one per thread and marketplace.
        self._local = threading.local()

    def _client(self, marketplace: Marketplace, family: str = "catalog") -> Any:
        clients: dict[tuple[str, str], Any] = self._local.__dict__.setdefault("clients", {})
        client = clients.get((family, marketplace.code))
        if client is None:
            library_marketplace = Marketplaces[marketplace.code]
            client_class, versioned = FAMILIES[family]
            client = client_class(
                library_marketplace,
                **versioned,
                credentials=self._credentials,
                timeout=self._timeout,
                verify=_tls_context(),
                auth_token_client_class=self._token_client,
            )
            # Name the marketplace ourselves: SP_API_DEFAULT_MARKETPLACE would override it.
            client.marketplace_id = marketplace.marketplace_id
            client.region = library_marketplace.region
            client.endpoint = self._endpoint or library_marketplace.endpoint
            client._transport = _GuardedTransport(client._transport, self._limiter, self._lanes, marketplace.region, self._timeout)
            clients[(family, marketplace.code)] = client
        return client

    def warm_up(self, marketplace: Marketplace) -> None:
        """Build this thread's client now (imports, TLS context), not on a request's first SP-API call."""
        self._client(marketplace)

    def get_catalog_item(self, marketplace: Marketplace, asin: str, count: CallCount | None = None) -> dict[str, Any]:
        """getCatalogItem: the item for `asin`, or ServiceError (NOT_FOUND, THROTTLED, ...)."""

        def call(client: Any) -> dict[str, Any]:
            return client.get_catalog_item(asin, marketplaceIds=[marketplace.marketplace_id], includedData=INCLUDED_DATA).payload

        return self.call(marketplace, "getCatalogItem", 1, call, count)

    def search_catalog_items(self, marketplace: Marketplace, asins: list[str], count: CallCount | None = None) -> list[dict[str, Any]]:
        """searchCatalogItems by ASIN (at most 20), following nextToken; the items found."""
        return self.search_catalog_items_by_identifiers(marketplace, asins, "ASIN", count)

    def search_catalog_items_by_identifiers(
        self, marketplace: Marketplace, identifiers: list[str], identifiers_type: str, count: CallCount | None = None
    ) -> list[dict[str, Any]]:
        """searchCatalogItems by up to 20 identifiers of one identifiersType (ASIN, UPC, EAN, ...), following nextToken."""
        if len(identifiers) > SEARCH_MAX_IDENTIFIERS:
            raise ValueError(f"searchCatalogItems takes at most {SEARCH_MAX_IDENTIFIERS} identifiers")

        def page(client: Any, token: str | None) -> Any:
            params: dict[str, Any] = {
                "identifiers": ",".join(identifiers),
                "identifiersType": identifiers_type,
                "marketplaceIds": [marketplace.marketplace_id],
                "includedData": INCLUDED_DATA,
                "pageSize": SEARCH_MAX_IDENTIFIERS,
            }
            if token:
                params["pageToken"] = token
            return client.search_catalog_items(**params)

        # One identifier can match several items (variations, bundles): then SP-API pages.
        items: list[dict[str, Any]] = []
        token: str | None = None
        seen_tokens: set[str] = set()
        while True:
            response = self.call(marketplace, "searchCatalogItems", len(identifiers), functools.partial(page, token=token), count)
            items.extend((response.payload or {}).get("items") or [])
            token = response.next_token
            if not token or token in seen_tokens:
                return items
            seen_tokens.add(token)

    def call(
        self,
        marketplace: Marketplace,
        operation: str,
        asin_count: int,
        fn: Callable[[Any], Any],
        count: CallCount | None = None,
        *,
        family: str = "catalog",
    ) -> Any:
        """`fn(client)` with this thread's library client of `family` (FAMILIES) for `marketplace`, guarded as every call is.

        The limiter admits each request at the wire, on its operation's bucket; transient failures are
        retried; a refused access token is fetched again once; the region's circuit counts outages; and
        whatever still fails is raised as a ServiceError. Every SP-API family's calls go through here.
        """
        client = self._client(marketplace, family)
        transport: _GuardedTransport = client._transport
        transport.count = count if count is not None else CallCount()
        reauthenticated = False

        def attempt() -> Any:
            nonlocal reauthenticated
            try:
                return fn(client)
            except SellingApiForbiddenException:
                # An access token SP-API no longer accepts (expired early, revoked): fetch a new one, once.
                if reauthenticated:
                    raise
                reauthenticated = True
                self.tokens.invalidate(client._auth.cache_key, client._auth.last_access_token)
                log.warning("SP-API refused the access token; fetching a new one: %s (%s)", operation, marketplace.code)
                return fn(client)

        def on_retry(attempt_number: int, exc: BaseException, delay: float) -> None:
            metrics.count_spapi_retry(operation, _retry_reason(exc))
            log.warning(
                "retry %d/%d of %s (%s, %d ASINs) in %.2fs: %s",
                attempt_number,
                self._retry_policy.max_retries,
                operation,
                marketplace.code,
                asin_count,
                delay,
                _describe(exc),
            )

        def with_retries() -> Any:
            return call_with_retries(attempt, policy=self._retry_policy, retryable=is_retryable, on_retry=on_retry, sleep=self._sleep)

        try:
            result = self.circuits.call(marketplace.region, with_retries)
        except pybreaker.CircuitBreakerError:
            failure = ServiceError(
                errors.UPSTREAM_UNAVAILABLE,
                f"SP-API {marketplace.region} is failing: calls are paused for up to {self.circuits.cooldown:g}s (circuit open)",
                retry_after=self.circuits.cooldown,
            )
            self._health.record_failure(operation, failure.code, failure.message)
            raise failure from None
        except (RateLimited, SellingApiException, AuthorizationError, httpx.TransportError) as exc:
            failure = translate(exc, operation, self._retry_policy.max_retries if is_retryable(exc) else 0)
            if failure.code == errors.NOT_FOUND:
                self._health.record_success(operation)  # SP-API answered: a clean not-found
            elif failure.code != errors.THROTTLED or not isinstance(exc, RateLimited):
                log.error("%s (%s, %d ASINs) failed: %s", operation, marketplace.code, asin_count, failure.message)
                self._health.record_failure(operation, failure.code, failure.message)
            raise failure from None
        self._health.record_success(operation)
        return result

    def retry_items(
        self,
        operation: str,
        marketplace: Marketplace,
        keys: Sequence[K],
        fetch: Callable[[list[K]], dict[K, V]],
        failed: Callable[[V], bool],
    ) -> dict[K, V]:
        """`fetch(keys)`, then `fetch` again for the keys whose answer `failed`, alone, on the SP-API retry schedule.

        For batch operations that answer per-item failures inside a 200 (an offers response whose item
        says 500, a fees result with Status ServiceError): only those items are asked again, never the
        whole batch; each retry is a call of its own through `call`. The last answers stand, failed or not.
        """
        answers = fetch(list(keys))
        for attempt in range(1, self._retry_policy.max_retries + 1):
            again = [key for key in keys if failed(answers[key])]
            if not again:
                break
            delay = self._retry_policy.delay(attempt)
            metrics.count_spapi_retry(operation, "item")
            log.warning(
                "retry %d/%d of %s (%s) for %d items that failed inside its answer, in %.2fs",
                attempt,
                self._retry_policy.max_retries,
                operation,
                marketplace.code,
                len(again),
                delay,
            )
            self._sleep(delay)
            answers.update(fetch(again))
        return answers


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context (CA bundle loaded once) for every client: loading it costs ~50 ms each time."""
    return ssl.create_default_context(cafile=certifi.where())


def failure_code(exc: BaseException) -> str:
    """The service's error code for a library or transport exception (what services/errors.py's policy judges)."""
    if isinstance(exc, RateLimited | SellingApiRequestThrottledException):
        return errors.THROTTLED
    if isinstance(exc, SellingApiNotFoundException):
        return errors.NOT_FOUND
    if isinstance(exc, SellingApiForbiddenException):
        return errors.AUTH_FAILED
    if isinstance(exc, AuthorizationError):
        status = exc.status_code or 0
        return errors.UPSTREAM_ERROR if status >= 500 else (errors.THROTTLED if status == 429 else errors.AUTH_FAILED)
    if isinstance(exc, SellingApiServerException | SellingApiTemporarilyUnavailableException | SellingApiGatewayTimeoutException):
        return errors.UPSTREAM_ERROR
    if isinstance(exc, SellingApiException):
        return status_failure_code(exc.code)
    if isinstance(exc, httpx.TimeoutException):
        return errors.TIMEOUT
    if isinstance(exc, httpx.TransportError):
        # Refused, reset, dropped or a name that does not resolve: SP-API is unreachable.
        return errors.UPSTREAM_UNAVAILABLE
    return errors.UPSTREAM_ERROR


def status_failure_code(status: int | None) -> str:
    """The service's error code for an SP-API error status, of a whole answer or of one item inside a batch's 200."""
    if status == 404:
        return errors.NOT_FOUND
    if status == 429:
        return errors.THROTTLED
    if status is not None and 400 <= status < 500:
        return errors.UPSTREAM_REJECTED
    return errors.UPSTREAM_ERROR


def is_retryable(exc: BaseException) -> bool:
    """True for a failure worth retrying at once: transient (the quota, SP-API or the network), not our own limiter's no."""
    return not isinstance(exc, RateLimited) and errors.is_transient(failure_code(exc))


def is_outage(exc: BaseException) -> bool:
    """True for a failure that says SP-API (or Login with Amazon) is down or broken, not that it said no."""
    return errors.is_outage(failure_code(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SellingApiException):
        return f"HTTP {exc.code} {getattr(exc, 'amzn_code', '')}".strip()
    if isinstance(exc, AuthorizationError):
        return f"LWA HTTP {exc.status_code} {exc.error_code}"
    return f"{type(exc).__name__}: {exc}"


def _retry_reason(exc: BaseException) -> str:
    """A short, bounded label for why a call is retried: its HTTP status, "lwa_<status>", "timeout" or "connection"."""
    if isinstance(exc, SellingApiException):
        return str(exc.code)
    if isinstance(exc, AuthorizationError):
        return f"lwa_{exc.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.TransportError):
        return "connection"
    return type(exc).__name__


def translate(exc: BaseException, operation: str, retries: int) -> ServiceError:
    """The ServiceError for a library or transport exception, `retries` having been spent on it."""
    code = failure_code(exc)
    after = f" after {retries} retries" if retries else ""
    if isinstance(exc, RateLimited):
        message = f"Rate limit reached: the next SP-API slot is {exc.retry_after:.1f}s away, beyond REQUEST_TIMEOUT"
        return ServiceError(code, message, retry_after=exc.retry_after)
    if isinstance(exc, SellingApiNotFoundException):
        return ServiceError(code, getattr(exc, "message", None) or "Not found in the catalog")
    if isinstance(exc, SellingApiRequestThrottledException):
        return ServiceError(code, f"SP-API throttled {operation} (429 QuotaExceeded){after}", retry_after=1.0)
    if isinstance(exc, SellingApiForbiddenException):
        return ServiceError(code, f"SP-API refused the credentials for {operation} (403 {getattr(exc, 'amzn_code', '')})")
    if isinstance(exc, AuthorizationError):
        if code == errors.AUTH_FAILED:
            return ServiceError(code, f"Login with Amazon refused the credentials: {exc.error_code}: {exc.message}")
        return ServiceError(
            code, f"Login with Amazon failed (HTTP {exc.status_code}){after}", retry_after=1.0 if code == errors.THROTTLED else None
        )
    if isinstance(exc, SellingApiException):
        detail = getattr(exc, "message", None) or ""
        return ServiceError(code, f"SP-API {operation} answered HTTP {exc.code} {detail}{after}".strip())
    if code == errors.TIMEOUT:
        return ServiceError(code, f"SP-API {operation} did not answer within REQUEST_TIMEOUT{after}")
    if code == errors.UPSTREAM_UNAVAILABLE:
        return ServiceError(code, f"Connection to SP-API failed for {operation} ({type(exc).__name__}){after}")
    return ServiceError(code, f"SP-API {operation} failed ({type(exc).__name__}){after}")
