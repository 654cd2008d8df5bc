"""Benchmarks of fba-backend against the SP-API emulator: `make bench` or `python -m bench` (see bench/run.py)."""
