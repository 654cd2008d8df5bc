"""SP-API marketplaces: country code, marketplace id and region, and country parsing."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Marketplace:
    """One Amazon marketplace as SP-API knows it."""

    code: str
    marketplace_id: str
    region: str  # NA, EU or FE: the SP-API endpoint (and quota) the marketplace belongs to
    name: str


# https://developer-docs.amazon.com/sp-api/docs/marketplace-ids
MARKETPLACES: dict[str, Marketplace] = {
    m.code: m
    for m in (
        Marketplace("US", "ATVPDKIKX0DER", "NA", "United States"),
        Marketplace("CA", "A2EUQ1WTGCTBG2", "NA", "Canada"),
        Marketplace("MX", "A1AM78C64UM0Y8", "NA", "Mexico"),
        Marketplace("BR", "A2Q3Y263D00KWC", "NA", "Brazil"),
        Marketplace("GB", "A1F83G8C2ARO7P", "EU", "United Kingdom"),
        Marketplace("IE", "A28R8C7NBKEWEA", "EU", "Ireland"),
        Marketplace("DE", "A1PA6795UKMFR9", "EU", "Germany"),
        Marketplace("FR", "A13V1IB3VIYZZH", "EU", "France"),
        Marketplace("IT", "APJ6JRA9NG5V4", "EU", "Italy"),
        Marketplace("ES", "A1RKKUPIHCS9HS", "EU", "Spain"),
        Marketplace("NL", "A1805IZSGTT6HS", "EU", "Netherlands"),
        Marketplace("BE", "AMEN7PMS3EDWL", "EU", "Belgium"),
        Marketplace("SE", "A2NODRKZP88ZB9", "EU", "Sweden"),
        Marketplace("PL", "A1C3SOZRARQ6R3", "EU", "Poland"),
        Marketplace("TR", "A33AVAJ2PDY3EV", "EU", "Turkey"),
        Marketplace("EG", "ARBP9OOSHTCHU", "EU", "Egypt"),
        Marketplace("SA", "A17E79C6D8DWNP", "EU", "Saudi Arabia"),
        Marketplace("AE", "A2VIGQ35RCS4UG", "EU", "United Arab Emirates"),
        Marketplace("IN", "A21TJRUUN4KGV", "EU", "India"),
        Marketplace("ZA", "AE08WJ6YKNBMC", "EU", "South Africa"),
        Marketplace("JP", "A1VC38T7YXB528", "FE", "Japan"),
        Marketplace("AU", "A39IBJ37TRP1C6", "FE", "Australia"),
        Marketplace("SG", "A19VAU5U5O7RUS", "FE", "Singapore"),
    )
}
# ISO 4217 currency of each marketplace: what its prices and fees are in (and what SP-API expects in a fee request).
CURRENCIES: dict[str, str] = {
    "US": "USD", "CA": "CAD", "MX": "MXN", "BR": "BRL", "GB": "GBP", "IE": "EUR", "DE": "EUR", "FR": "EUR",
    "IT": "EUR", "ES": "EUR", "NL": "EUR", "BE": "EUR", "SE": "SEK", "PL": "PLN", "TR": "TRY", "EG": "EGP",
    "SA": "SAR", "AE": "AED", "IN": "INR", "ZA": "ZAR", "JP": "JPY", "AU": "AUD", "SG": "SGD",
}  # fmt: skip
ALIASES = {"UK": "GB"}
SUPPORTED_CODES = tuple(MARKETPLACES) + tuple(ALIASES)


class UnknownCountry(LookupError):
    """The country code names no SP-API marketplace."""

    def __init__(self, raw: object) -> None:
        super().__init__(f"Unsupported country {raw!r}; supported: {', '.join(sorted(SUPPORTED_CODES))}")


# SP-API regions: each has its own endpoint and its own quota.
REGIONS = ("NA", "EU", "FE")


def resolve_country(raw: object) -> Marketplace:
    """Return the marketplace for a country code (case-insensitive, UK = GB)."""
    if not isinstance(raw, str):
        raise UnknownCountry(raw)
    code = raw.strip().upper()
    code = ALIASES.get(code, code)
    try:
        return MARKETPLACES[code]
    except KeyError:
        raise UnknownCountry(raw) from None


# Amazon's own (retail) seller id, per marketplace: its offers carry it as SellerId. Marketplaces not
# listed fall back to Amazon.com's. The emulator's Amazon offers carry the same ids.
AMAZON_SELLER_IDS = {
    "US": "ATVPDKIKX0DER",
    "CA": "A3DWYIK6Y9EEQB",
    "MX": "AVDBXBAVVSXLQ",
    "BR": "A1ZZFT5FULY4LN",
    "GB": "A3P5ROKL5A1OLE",
    "DE": "A3JWKAKR8XB7XF",
    "FR": "A1X6FK5RDHNB96",
    "IT": "A11IL2PNWYJU7H",
    "ES": "A1AT7YVPFBWXBL",
    "JP": "AN1VRQENFRJN5",
    "AU": "ANEGB3WVEVKZB",
}
_DEFAULT_AMAZON_SELLER_ID = AMAZON_SELLER_IDS["US"]


def amazon_seller_id(code: str) -> str:
    """Amazon's own seller id in the marketplace of country `code` (AMAZON_SELLER_IDS, else Amazon.com's)."""
    return AMAZON_SELLER_IDS.get(code, _DEFAULT_AMAZON_SELLER_ID)
