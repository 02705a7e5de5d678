"""The local AWS: a moto server in a process of its own.

:class:`MotoServer` starts ``python -m smsgw_local.moto_server --port N`` (0: any free
port), so that the AWS emulation does not share a GIL with the handlers or the HTTP front.
The child binds, writes ``PORT <n>`` on its standard output, and serves until its
standard input closes: when the orchestrator stops it, or dies, the server goes too.
It runs in a session of its own, so Ctrl-C in the terminal is the orchestrator's alone.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from typing import IO

log = logging.getLogger("smsgw_local.moto")


class MotoError(RuntimeError):
    """The moto server did not start."""


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise MotoError("the moto server is not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start the process (it binds in the background; see :meth:`wait_ready`)."""
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "smsgw_local.moto_server",
                "--host",
                self.host,
                "--port",
                str(self.requested_port),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30.0) -> str:
        """Block until the server listens; its URL."""
        process = self._process
        if process is None or process.stdout is None:
            raise MotoError("the moto server is not started")
        line = _read_line(process.stdout, timeout)
        if not line.startswith(b"PORT "):
            self.stop()
            detail = line.decode("utf-8", "replace").strip() or "no answer"
            raise MotoError(f"moto server did not start on {self.host}:{self.requested_port}: {detail}")
        self.port = int(line.split()[1])
        return self.url

    def stop(self, timeout: float = 3.0) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(1.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _read_line(stream: IO[bytes], timeout: float) -> bytes:
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    data = b""
    try:
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                break
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                break
            data += chunk
    finally:
        selector.close()
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smsgw_local.moto_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    # Imported here, in the child only: the orchestrator never loads moto.
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server  # noqa: PLC0415

    from smsgw_local import moto_fidelity  # noqa: PLC0415

    # The request threads of this server race like concurrent Lambda containers do:
    # give them DynamoDB's atomic conditional writes (and SQS's pace on deep queues).
    moto_fidelity.install()
    try:
        server = make_server(
            args.host,
            args.port,
            DomainDispatcherApplication(create_backend_app),
            threaded=True,
            request_handler=MotoRequestHandler,
        )
    except (OSError, SystemExit) as err:  # werkzeug exits when the port is taken
        reason = str(err) if isinstance(err, OSError) else "the port is in use"
        print(f"cannot listen on {args.host}:{args.port}: {reason}", flush=True)
        return 2
    print(f"PORT {server.server_address[1]}", flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nobody reads stdout any more
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with contextlib.suppress(OSError):
        while sys.stdin.buffer.read(1024):
            pass  # until the orchestrator closes our stdin (or dies)
    # Nothing to save (moto keeps its state in memory): exit without waiting for the
    # server's poll interval.
    return 0


if __name__ == "__main__":
    sys.exit(main())
