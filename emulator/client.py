"""EmulatorClient: a small httpx client for a running emulator (tests, scripts, manual poking)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from emulator.defaults import CLIENT_ID, CLIENT_SECRET, MARKETPLACES, REFRESH_TOKEN

CATALOG_ITEMS_PATH = "/catalog/2022-04-01/items"
TOKEN_PATH = "/auth/o2/token"


class EmulatorClient:
    """Fetches an LWA token once, then calls Catalog Items and the /_emulator/ controls over HTTP."""

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        refresh_token: str = REFRESH_TOKEN,
        marketplace_id: str = MARKETPLACES["US"],
        timeout: float = 10.0,
    ) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout)
        self.marketplace_id = marketplace_id
        self._form = {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "refresh_token": refresh_token,
            "client_secret": client_secret,
        }
        self._token: str | None = None

    def request_token(self, **overrides: str | None) -> httpx.Response:
        """POST the LWA token form (as python-amazon-sp-api sends it); a None override drops the field."""
        form = {**self._form, **overrides}
        return self.http.post(TOKEN_PATH, data={k: v for k, v in form.items() if v is not None})

    @property
    def token(self) -> str:
        """A valid access token, fetched on first use."""
        if self._token is None:
            response = self.request_token()
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return self._token

    def _headers(self, token: str | None) -> dict[str, str]:
        return {"x-amz-access-token": self.token if token is None else token}

    def get_catalog_item(self, asin: str, *, token: str | None = None, **params: Any) -> httpx.Response:
        """getCatalogItem; marketplaceIds defaults to the client's marketplace."""
        params.setdefault("marketplaceIds", self.marketplace_id)
        return self.http.get(f"{CATALOG_ITEMS_PATH}/{asin}", params=params, headers=self._headers(token))

    def search_catalog_items(self, *, token: str | None = None, **params: Any) -> httpx.Response:
        """searchCatalogItems; marketplaceIds defaults to the client's marketplace."""
        params.setdefault("marketplaceIds", self.marketplace_id)
        return self.http.get(CATALOG_ITEMS_PATH, params=params, headers=self._headers(token))

    def calls(self) -> dict[str, Any]:
        """GET /_emulator/calls."""
        return self.http.get("/_emulator/calls").raise_for_status().json()

    def configure(self, **changes: Any) -> dict[str, Any]:
        """POST /_emulator/config; returns the new config."""
        return self.http.post("/_emulator/config", json=changes).raise_for_status().json()

    def reset(self) -> None:
        """POST /_emulator/reset."""
        self.http.post("/_emulator/reset").raise_for_status()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()

    def __enter__(self) -> EmulatorClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
