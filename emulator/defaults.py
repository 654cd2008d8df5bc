"""Constants shared by the emulator and its clients: credentials, seller id, port and marketplace ids."""

from utils.marketplaces import MARKETPLACES as _MARKETPLACES
from utils.sandbox import CLIENT_ID, CLIENT_SECRET, DEFAULT_PORT, REFRESH_TOKEN, SELLER_ID

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "DEFAULT_PORT", "MARKETPLACES", "NOT_FOUND_PREFIX", "REFRESH_TOKEN", "SELLER_ID"]

# ASINs starting with this prefix do not exist (404 / absent from search results).
NOT_FOUND_PREFIX = "NF"

# Country code -> marketplace id for every SP-API marketplace: the service's own table
# (https://developer-docs.amazon.com/sp-api/docs/marketplace-ids), kept in one place.
MARKETPLACES: dict[str, str] = {code: marketplace.marketplace_id for code, marketplace in _MARKETPLACES.items()}
