"""``smsgw``: the entry point. Global options, the subcommands of ``commands.registry()``,
and the exit codes.

The global options are accepted before or after the subcommand
(``smsgw --json status ID`` and ``smsgw status ID --json`` both work).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from typing import NoReturn
from urllib.parse import urlsplit

from smsgw_cli.client import ApiError, Unreachable, display_url
from smsgw_cli.commands import registry
from smsgw_cli.commands.status import positive_seconds
from smsgw_cli.context import DEFAULT_API_KEY, DEFAULT_PORT, DEFAULT_TIMEOUT, Context, Exit, GlobalOptions

DESCRIPTION = "The command line of the Guodu 企信通 SMS gateway: send messages and follow their status."
EPILOG = f"""\
exit codes:
  0    done
  1    refused: a usage error, or the API answered 4xx (do not retry as is)
  2    the API failed (5xx) or could not be reached (retrying may help)
  3    out of time: send --wait with recipients still queued, or
       status --watch --max-time with recipients not yet in a final state
  130  interrupted (Ctrl-C)

Prefer SMSGW_API_KEY to --api-key: a command line is visible to other users of the machine.
For a deployed stack, --url is the stack's ApiUrl output and the key is read with
  aws apigateway get-api-key --include-value --api-key <ApiKeyId output>

`smsgw COMMAND --help` describes each command. Default URL: http://127.0.0.1:{DEFAULT_PORT}
(the local stack of `make run`)."""


class Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors exit 1 (like every refused request), not 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(Exit.REFUSED, f"{self.prog}: error: {message}\n")


def add_global_options(parser: argparse.ArgumentParser, *, in_subcommand: bool) -> None:
    """The same options on the main parser and on each subcommand's. In a subcommand an
    option left out is not set at all, so it cannot undo one given before the subcommand.
    Defaults are resolved later from the environment, and never shown (the key is secret)."""
    group = parser.add_argument_group("global options")
    unset: object = argparse.SUPPRESS if in_subcommand else None
    group.add_argument(
        "--url",
        metavar="URL",
        help=f"the API's base URL [SMSGW_URL; default http://127.0.0.1:$SMSGW_API_PORT, port {DEFAULT_PORT}]",
        default=unset,
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"the API key, sent as x-api-key [SMSGW_API_KEY; default {DEFAULT_API_KEY}]",
        default=unset,
    )
    group.add_argument(
        "--json",
        action="store_true",
        help="print the API's JSON reply instead of text",
        default=argparse.SUPPRESS if in_subcommand else False,
    )
    group.add_argument(
        "--sigv4",
        action="store_true",
        help="sign requests with AWS SigV4 (a stack deployed with ApiAuth=IAM) instead of an API key; "
        "credentials from the AWS default chain, the region from the URL (else AWS_REGION)",
        default=argparse.SUPPRESS if in_subcommand else False,
    )
    group.add_argument(
        "--timeout",
        type=positive_seconds,
        metavar="SECONDS",
        help=f"for each HTTP request (default {DEFAULT_TIMEOUT:g})",
        default=unset,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="smsgw",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(parser, in_subcommand=False)
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for command in registry():
        sub = subcommands.add_parser(
            command.name,
            help=command.help,
            description=command.description,
            epilog=command.epilog or None,
        )
        command.configure(sub)
        add_global_options(sub, in_subcommand=True)
        sub.set_defaults(run=command.run)
    return parser


def _quiet_broken_pipe() -> None:
    """``smsgw status ID | head``: stop quietly when the reader goes away."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (e.g. under test)
        pass


def run(args: argparse.Namespace) -> int:
    stdin = getattr(sys.stdin, "buffer", None) or io.BytesIO()
    ctx = Context(GlobalOptions.from_args(args), sys.stdout, sys.stderr, stdin)
    url = urlsplit(ctx.options.url)
    if url.scheme not in ("http", "https") or not url.netloc:
        return ctx.usage_error(f"--url {display_url(ctx.options.url)!r} is not an http:// or https:// URL")
    try:
        return int(args.run(args, ctx))
    except (ApiError, Unreachable) as err:
        return ctx.fail(err)
    except KeyboardInterrupt:
        ctx.note("interrupted")
        return Exit.INTERRUPTED
    except BrokenPipeError:
        _quiet_broken_pipe()
        return Exit.OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error already explained
        return stop.code if isinstance(stop.code, int) else Exit.REFUSED
    if args.command is None:
        parser.print_help(sys.stderr)
        return Exit.REFUSED
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
