"""The bundled SP-API emulator's credentials, seller id and port: the emulator accepts them, and the service uses them in emulator mode.

They live here, not in emulator/, so that reading the settings never loads the emulator (or Flask with it).
They grant nothing anywhere else.
"""

from __future__ import annotations

CLIENT_ID = "amzn1.application-oa2-client.emulator"
CLIENT_SECRET = "emulator-client-secret"
REFRESH_TOKEN = "Atzr|emulator-refresh-token"
# The merchant token of the emulator's seller: sellerId for Listings Restrictions, SellerId in fee estimates.
SELLER_ID = "A2EMULATORSELLER"

DEFAULT_PORT = 8001
