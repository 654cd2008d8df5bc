"""Offline emulator of Amazon's SP-API for tests and `make run`.

LWA, Catalog Items, Product Pricing, Product Fees, Listings Restrictions and FBA Inbound Eligibility.
"""

from emulator.app import create_emulator_app
from emulator.options import EmulatorOptions
from emulator.server import EmulatorServer

__all__ = ["EmulatorOptions", "EmulatorServer", "create_emulator_app"]
