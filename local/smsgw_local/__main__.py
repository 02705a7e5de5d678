"""``python -m smsgw_local`` (``make run``): the whole gateway until Ctrl-C or SIGTERM.

Prints the URLs and a ready-to-paste ``curl`` once everything is up; handler output goes
to the terminal, each line led by the function's name. Settings are environment
variables (see ``smsgw_local.stack.ENV_VARS``); ``--help`` lists them.
``SMSGW_LOG_LEVEL=DEBUG`` adds the stack's own details (a REPORT line per invocation).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

log = logging.getLogger("smsgw_local")


class _Interrupted(Exception):
    """A signal arrived while the stack was still starting."""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from smsgw_local.stack import ENV_VARS, LocalGateway, StackError  # noqa: PLC0415 - keep start-up lean

    if args and args[0] in ("-h", "--help"):
        lines = ["usage: python -m smsgw_local", "", "Environment variables:"]
        lines += [f"  {name:<30} {meaning}" for name, meaning in ENV_VARS.items()]
        sys.stdout.write("\n".join(lines) + "\n")
        return 0
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)-22s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # SMSGW_LOG_LEVEL=DEBUG shows the stack's own details (REPORT lines, start-up phases),
    # not every botocore request.
    logging.getLogger("smsgw_local").setLevel(os.environ.get("SMSGW_LOG_LEVEL", "INFO").upper())
    done = threading.Event()
    phase = ["starting"]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()
        if phase[0] == "starting":  # interrupt the start-up, once; later signals only stop
            phase[0] = "stopping"
            raise _Interrupted

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack = LocalGateway()
        stack.start()  # stops what it started if it fails or is interrupted
    except _Interrupted:
        log.info("interrupted during start-up")
        return 0
    except (StackError, RuntimeError, OSError, ValueError) as err:
        log.error("cannot start the local stack: %s", err)
        return 1
    phase[0] = "running"
    try:
        sys.stdout.write(stack.banner() + "\n")
        sys.stdout.flush()
        while not done.wait(0.5):
            pass
        log.info("stopping")
    finally:
        stack.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
