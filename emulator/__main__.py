"""`python -m emulator`: run the SP-API emulator in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from emulator.defaults import DEFAULT_PORT
from emulator.options import EmulatorOptions, OptionError, parse_statuses
from emulator.server import EmulatorServer


def _statuses(value: str) -> tuple[int, ...]:
    try:
        return parse_statuses(value)
    except OptionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _plans(value: str) -> dict[str, list[float]]:
    try:
        plans = json.loads(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--plans is not JSON: {exc}") from exc
    if not isinstance(plans, dict):
        raise argparse.ArgumentTypeError('--plans must be a JSON object, e.g. {"getItemOffersBatch": [10, 10]}')
    return plans


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface; defaults are EmulatorOptions' defaults."""
    d = EmulatorOptions()
    p = argparse.ArgumentParser(
        prog="python -m emulator", description="Local SP-API emulator (LWA, Catalog Items, Pricing, Fees, Restrictions, Eligibility)."
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on, 0 for any free one (default {DEFAULT_PORT})")
    p.add_argument("--rate", type=float, default=d.rate, help="usage plan: requests/s per operation (default 2)")
    p.add_argument("--burst", type=int, default=d.burst, help="usage plan: burst per operation (default 2)")
    p.add_argument("--announced-rate", type=float, default=None, help="rate sent in x-amzn-RateLimit-Limit (default: --rate)")
    p.add_argument(
        "--plans",
        type=_plans,
        default={},
        help="JSON of [rate, burst] by operation, overriding the models' plans, e.g. '{\"getItemOffersBatch\": [10, 10]}'",
    )
    p.add_argument("--fault-rate", type=float, default=d.fault_rate, help="probability an admitted call answers 5xx")
    p.add_argument("--fault-statuses", type=_statuses, default=d.fault_statuses, help="comma-separated statuses (default 500,503)")
    p.add_argument("--drop-rate", type=float, default=d.drop_rate, help="probability the connection is closed without a response")
    p.add_argument("--latency-ms", type=int, default=d.latency_ms, help="milliseconds added to every SP-API response")
    p.add_argument("--slow-rate", type=float, default=d.slow_rate, help="probability a response is delayed by --slow-seconds")
    p.add_argument("--slow-seconds", type=float, default=d.slow_seconds, help="delay of slow responses")
    p.add_argument("--token-delay", type=float, default=d.token_delay, help="seconds the LWA token endpoint waits")
    p.add_argument("--token-fault-rate", type=float, default=d.token_fault_rate, help="probability the LWA token endpoint answers 500")
    p.add_argument("--token-ttl", type=int, default=d.token_ttl, help="seconds access tokens stay valid (default 3600)")
    p.add_argument("--announced-token-ttl", type=int, default=None, help="expires_in sent with tokens (default: --token-ttl)")
    p.add_argument("--page-size-cap", type=int, default=d.page_size_cap, help="most items per search page (default 20)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the fault random source (default 0)")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.add_argument("--exit-with-parent", action="store_true", help="exit when the process that started this one dies (even by SIGKILL)")
    return p


def options_from_args(args: argparse.Namespace) -> EmulatorOptions:
    """EmulatorOptions from parsed command-line arguments."""
    return EmulatorOptions(
        rate=args.rate,
        burst=args.burst,
        announced_rate=args.announced_rate,
        plans=args.plans,
        fault_rate=args.fault_rate,
        fault_statuses=args.fault_statuses,
        drop_rate=args.drop_rate,
        latency_ms=args.latency_ms,
        slow_rate=args.slow_rate,
        slow_seconds=args.slow_seconds,
        token_delay=args.token_delay,
        token_fault_rate=args.token_fault_rate,
        token_ttl=args.token_ttl,
        announced_token_ttl=args.announced_token_ttl,
        page_size_cap=args.page_size_cap,
        seed=args.seed,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = options_from_args(args)
    except OptionError as exc:
        parser.error(str(exc))
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server = EmulatorServer(options, host=args.host, port=args.port, verbose=args.verbose)
    try:
        server.start()
    except OSError as exc:
        print(f"SP-API emulator: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"SP-API emulator listening on http://{args.host}:{server.port}", flush=True)
    parent = os.getppid()
    try:
        while not stop.wait(0.5):
            # A parent killed with SIGKILL cannot stop us; being re-parented says it is gone.
            if args.exit_with_parent and os.getppid() != parent:
                break
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
