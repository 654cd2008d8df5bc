"""Offline emulator of Amazon's SP-API (LWA token endpoint + Catalog Items 2022-04-01) for tests and `make run`."""

from emulator.app import create_emulator_app
from emulator.options import EmulatorOptions
from emulator.server import EmulatorServer

__all__ = ["EmulatorOptions", "EmulatorServer", "create_emulator_app"]
