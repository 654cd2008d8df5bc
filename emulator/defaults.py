"""Constants shared by the emulator and its clients: credentials, port and marketplace ids."""

# LWA credentials the emulator accepts by default (they grant nothing anywhere else).
CLIENT_ID = "amzn1.application-oa2-client.emulator"
CLIENT_SECRET = "emulator-client-secret"
REFRESH_TOKEN = "Atzr|emulator-refresh-token"

DEFAULT_PORT = 8001

# ASINs starting with this prefix do not exist (404 / absent from search results).
NOT_FOUND_PREFIX = "NF"

# Country code -> marketplace id for every SP-API marketplace
# (https://developer-docs.amazon.com/sp-api/docs/marketplace-ids).
MARKETPLACES: dict[str, str] = {
    # North America
    "US": "ATVPDKIKX0DER",
    "CA": "A2EUQ1WTGCTBG2",
    "MX": "A1AM78C64UM0Y8",
    "BR": "A2Q3Y263D00KWC",
    # Europe, Middle East, Africa and India
    "GB": "A1F83G8C2ARO7P",
    "IE": "A28R8C7NBKEWEA",
    "DE": "A1PA6795UKMFR9",
    "FR": "A13V1IB3VIYZZH",
    "IT": "APJ6JRA9NG5V4",
    "ES": "A1RKKUPIHCS9HS",
    "NL": "A1805IZSGTT6HS",
    "BE": "AMEN7PMS3EDWL",
    "SE": "A2NODRKZP88ZB9",
    "PL": "A1C3SOZRARQ6R3",
    "TR": "A33AVAJ2PDY3EV",
    "EG": "ARBP9OOSHTCHU",
    "SA": "A17E79C6D8DWNP",
    "AE": "A2VIGQ35RCS4UG",
    "IN": "A21TJRUUN4KGV",
    "ZA": "AE08WJ6YKNBMC",
    # Far East
    "JP": "A1VC38T7YXB528",
    "AU": "A39IBJ37TRP1C6",
    "SG": "A19VAU5U5O7RUS",
}
