"""``python -m guodu_simulator``: run the simulator until Ctrl-C or SIGTERM.

Every flag has a ``GUODU_SIM_*`` environment variable (see the package docstring); a
flag given on the command line wins. There is deliberately no flag for the password (a
command line is visible to every user of the machine): use ``GUODU_SIM_OPER_PASS`` or
``--oper-pass-file``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from guodu_simulator.config import ConfigError
from guodu_simulator.server import Simulator

DEFAULT_CLI_PORT = 9300

# flag → environment variable it stands for
_FLAGS: dict[str, tuple[str, str]] = {
    "host": ("GUODU_SIM_HOST", "address to bind (default 127.0.0.1)"),
    "port": ("GUODU_SIM_PORT", f"port to bind (default {DEFAULT_CLI_PORT}; 0 = any free port)"),
    "sp_number": ("GUODU_SIM_SP_NUMBER", "the platform's sp_number (default 106900)"),
    "oper_id": ("GUODU_SIM_OPER_ID", "the account's OperID"),
    "oper_pass_file": ("GUODU_SIM_OPER_PASS_FILE", "file holding the account's password"),
    "account_code": ("GUODU_SIM_ACCOUNT_CODE", "the account's code in the sender number (default 13)"),
    "balance": ("GUODU_SIM_BALANCE", "messages the account may send (default 100000000)"),
    "allowed_ips": ("GUODU_SIM_ALLOWED_IPS", "comma-separated source addresses/networks (default any)"),
    "push_url": ("GUODU_SIM_PUSH_URL", "where status reports and MO messages are pushed"),
    "delivery_ratio": ("GUODU_SIM_DELIVERY_RATIO", "share of numbers reported delivered (default 0.95)"),
    "report_delay": ("GUODU_SIM_REPORT_DELAY", "seconds before a report: N or LOW-HIGH (default 0.2-1.0)"),
    "latency_ms": ("GUODU_SIM_LATENCY_MS", "answer latency in ms: N or LOW-HIGH (default 0)"),
    "mo_format": ("GUODU_SIM_MO_FORMAT", "MO item format: guodu or camel (default guodu)"),
    "faults": ("GUODU_SIM_FAULTS", 'JSON fault settings, e.g. \'{"code_rates": {"-1": 0.1}}\''),
    "push_faults": ("GUODU_SIM_PUSH_FAULTS", "JSON push settings, e.g. '{\"duplicate_rate\": 0.1}'"),
    "seed": ("GUODU_SIM_SEED", "seed of the random choices"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m guodu_simulator",
        description="A local stand-in for the Guodu 企信通 SMS platform (submitJson, pushes, balance).",
    )
    for dest, (env, help_text) in _FLAGS.items():
        parser.add_argument(
            f"--{dest.replace('_', '-')}", dest=dest, metavar=dest.upper(), help=f"{help_text} [{env}]"
        )
    parser.add_argument("--quiet", action="store_true", help="no per-submit log line [GUODU_SIM_QUIET]")
    return parser


def environment(args: argparse.Namespace, base: dict[str, str]) -> dict[str, str]:
    """``base`` (the process environment) with the given flags laid over it."""
    env = dict(base)
    env.setdefault("GUODU_SIM_PORT", str(DEFAULT_CLI_PORT))
    for dest, (name, _) in _FLAGS.items():
        value = getattr(args, dest)
        if value is not None:
            env[name] = value
    if args.quiet:
        env["GUODU_SIM_QUIET"] = "1"
    return env


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    try:
        simulator = Simulator.from_env(environment(args, dict(os.environ)))
    except (ConfigError, ValueError, OSError) as err:
        print(f"guodu_simulator: {err}", file=sys.stderr)
        return 2
    if not simulator.config.accounts:
        logging.getLogger("guodu_simulator").warning(
            "no account configured: every submit answers 04 (set GUODU_SIM_OPER_ID and GUODU_SIM_OPER_PASS)"
        )
    done = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        simulator.start()
    except OSError as err:
        print(f"guodu_simulator: cannot listen: {err}", file=sys.stderr)
        return 2
    try:
        while not done.wait(0.5):
            pass
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
