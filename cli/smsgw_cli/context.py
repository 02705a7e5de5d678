"""What a subcommand is and what it gets: the global options, the streams, and the one
mapping from failures to exit codes and messages."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import BinaryIO, TextIO

from smsgw_cli import render
from smsgw_cli.client import ApiError, Endpoint, GatewayClient, Unreachable, is_local_url

DEFAULT_PORT = "3000"
DEFAULT_API_KEY = "local-dev-key"
DEFAULT_TIMEOUT = 10.0


class Exit(IntEnum):
    OK = 0
    REFUSED = 1  # the request is wrong: a usage error, or the API answered 4xx; do not retry as is
    UNAVAILABLE = 2  # the API failed (5xx) or could not be reached; retrying may help
    STILL_PENDING = 3  # send --wait / status --watch --max-time: out of time before it got there
    INTERRUPTED = 130  # Ctrl-C


def default_url(env: Mapping[str, str]) -> str:
    return env.get("SMSGW_URL") or f"http://127.0.0.1:{env.get('SMSGW_API_PORT') or DEFAULT_PORT}"


@dataclass(frozen=True)
class GlobalOptions:
    url: str
    api_key: str = field(repr=False)
    json: bool = False
    timeout: float = DEFAULT_TIMEOUT
    sigv4: bool = False
    region: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Mapping[str, str] | None = None) -> GlobalOptions:
        """Flags first, then the environment, then the local stack's defaults."""
        env = os.environ if env is None else env
        url: str | None = args.url
        api_key: str | None = args.api_key
        timeout: float | None = args.timeout
        return cls(
            url=url or default_url(env),
            api_key=api_key if api_key is not None else env.get("SMSGW_API_KEY", DEFAULT_API_KEY),
            json=bool(args.json),
            timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
            sigv4=bool(getattr(args, "sigv4", False)),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        )


@dataclass
class Context:
    options: GlobalOptions
    out: TextIO
    err: TextIO
    stdin: BinaryIO

    def client(self) -> GatewayClient:
        options = self.options
        endpoint = Endpoint.of(
            options.url, options.api_key, options.timeout, sigv4=options.sigv4, region=options.region
        )
        return GatewayClient(endpoint)

    def say(self, *lines: str) -> None:
        """Results, to stdout."""
        for line in lines:
            print(line, file=self.out)

    def note(self, *lines: str) -> None:
        """Progress, warnings and errors, to stderr."""
        for line in lines:
            print(line, file=self.err)
        self.err.flush()

    def fail(self, error: ApiError | Unreachable, *, idempotency_key: str | None = None) -> Exit:
        """Explain ``error`` on stderr and return its exit code.

        ``idempotency_key``: the key of a send that failed, so the hint can say how to
        retry it without sending twice.
        """
        if isinstance(error, Unreachable):
            self.note(*render.unreachable_lines(error, idempotency_key=idempotency_key))
            return Exit.UNAVAILABLE
        local = is_local_url(self.options.url)
        self.note(*render.api_error_lines(error, local=local, idempotency_key=idempotency_key))
        return Exit.REFUSED if error.status < 500 else Exit.UNAVAILABLE

    def usage_error(self, message: str) -> Exit:
        self.note(f"error: {message}")
        return Exit.REFUSED


@dataclass(frozen=True)
class Command:
    """One subcommand: its parser is built by ``configure``, and ``run`` does the work and
    returns an ``Exit`` code (``ApiError``/``Unreachable`` may propagate to ``main``)."""

    name: str
    help: str  # its line in `smsgw --help`
    description: str  # the top of `smsgw NAME --help`
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Context], int]
    epilog: str = ""
