"""Constants shared by the emulator and its clients: credentials, port and marketplace ids."""

from utils.marketplaces import MARKETPLACES as _MARKETPLACES

# LWA credentials the emulator accepts by default (they grant nothing anywhere else).
CLIENT_ID = "amzn1.application-oa2-client.emulator"
CLIENT_SECRET = "emulator-client-secret"
REFRESH_TOKEN = "Atzr|emulator-refresh-token"

DEFAULT_PORT = 8001

# ASINs starting with this prefix do not exist (404 / absent from search results).
NOT_FOUND_PREFIX = "NF"

# Country code -> marketplace id for every SP-API marketplace: the service's own table
# (https://developer-docs.amazon.com/sp-api/docs/marketplace-ids), kept in one place.
MARKETPLACES: dict[str, str] = {code: marketplace.marketplace_id for code, marketplace in _MARKETPLACES.items()}
