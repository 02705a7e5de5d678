"""``smsgw status ID``: a request's status, its counts and each recipient."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from smsgw_cli import render, watch
from smsgw_cli.client import GatewayClient
from smsgw_cli.context import Command, Context, Exit
from smsgw_cli.models import Status, merge_pages


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def add_interval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval",
        type=positive_seconds,
        default=watch.DEFAULT_INTERVAL,
        metavar="SECONDS",
        help=f"time between polls (default {watch.DEFAULT_INTERVAL:g})",
    )


def progress(ctx: Context) -> Callable[[Status, float], None]:
    def on_change(status: Status, elapsed: float) -> None:
        ctx.note(render.progress_line(status, elapsed))

    return on_change


def show(ctx: Context, client: GatewayClient, first: dict[str, Any], *, all_pages: bool) -> None:
    """Print a status reply (``first``), with every later page too when ``all_pages``."""
    raw = first
    cursor = first.get("next_cursor")
    if all_pages and cursor is not None:
        raw = merge_pages([first, *client.status_pages(str(first.get("id")), cursor=str(cursor))])
    if ctx.options.json:
        ctx.say(render.as_json(raw))
        return
    status = Status.from_json(raw)
    ctx.say(*render.status_lines(status))
    if status.next_cursor is not None:
        ctx.say("", f"more recipients than shown: smsgw status {status.id} --all")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="the request id (from `smsgw send` or the 202 reply)")
    parser.add_argument("--all", action="store_true", help="every recipient, following next_cursor pages")
    parser.add_argument(
        "--watch", action="store_true", help="poll until no recipient is queued, then show the result"
    )
    add_interval(parser)


def run(args: argparse.Namespace, ctx: Context) -> int:
    request_id: str = args.id
    with ctx.client() as client:
        if args.watch:
            first = watch.until_settled(
                client, request_id, interval=args.interval, on_change=progress(ctx)
            ).raw
        else:
            first = client.status(request_id)
        show(ctx, client, first, all_pages=args.all)
    return Exit.OK


COMMAND = Command(
    name="status",
    help="show a request's status and its recipients",
    description=(
        "GET /v1/messages/{id}: the request's status, its counts and a table of its "
        "recipients (the first page; --all for every page)."
    ),
    configure=configure,
    run=run,
    epilog="With --watch, progress lines go to stderr and the final status to stdout; Ctrl-C stops.",
)
