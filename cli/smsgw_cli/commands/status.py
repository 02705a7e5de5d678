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
    parser.add_argument(
        "--heartbeat",
        type=positive_seconds,
        default=watch.DEFAULT_HEARTBEAT,
        metavar="SECONDS",
        help="while waiting, say so on stderr after SECONDS without a change "
        f"(default {watch.DEFAULT_HEARTBEAT:g})",
    )


def progress(ctx: Context) -> Callable[[Status, float], None]:
    def on_change(status: Status, elapsed: float) -> None:
        ctx.note(render.progress_line(status, elapsed))

    return on_change


def heartbeat(ctx: Context) -> Callable[[Status, float, float], None]:
    """A line on stderr while nothing changes, so a long wait never looks hung."""

    def on_heartbeat(status: Status, elapsed: float, quiet: float) -> None:
        ctx.note(render.heartbeat_line(status, elapsed, quiet))

    return on_heartbeat


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
        "--watch",
        action="store_true",
        help="poll until every recipient is in a final state (delivered, failed, unknown, "
        "expired, cancelled, rejected, opted_out), printing each change, then show the result",
    )
    parser.add_argument(
        "--max-time",
        type=positive_seconds,
        metavar="SECONDS",
        help="with --watch: stop after SECONDS even if recipients are still queued or "
        "submitted, and exit 3 (default: no limit)",
    )
    add_interval(parser)


def run(args: argparse.Namespace, ctx: Context) -> int:
    request_id: str = args.id
    max_time: float | None = args.max_time
    if max_time is not None and not args.watch:
        return ctx.usage_error("--max-time only limits --watch")
    with ctx.client() as client:
        if not args.watch:
            show(ctx, client, client.status(request_id), all_pages=args.all)
            return Exit.OK
        limit = f" for at most {max_time:g}s" if max_time is not None else ""
        ctx.note(f"watching{limit} until every recipient is in a final state; Ctrl-C stops…")
        outcome = watch.until(
            client,
            request_id,
            watch.final,
            interval=args.interval,
            timeout=max_time,
            on_change=progress(ctx),
            on_heartbeat=heartbeat(ctx),
            heartbeat=args.heartbeat,
        )
        show(ctx, client, outcome.raw, all_pages=args.all)
    if not outcome.reached:
        ctx.note(
            f"still {outcome.status.pending_text()} after {max_time:g}s; "
            f"keep following it: smsgw status {request_id} --watch"
        )
        return Exit.STILL_PENDING
    return Exit.OK


COMMAND = Command(
    name="status",
    help="show a request's status and its recipients; --watch follows it to the end",
    description=(
        "GET /v1/messages/{id}: the request's status, its counts and a table of its "
        "recipients (the first page; --all for every page)."
    ),
    configure=configure,
    run=run,
    epilog=(
        "--watch polls until every recipient is in a final state: delivered, failed, unknown, "
        "expired, cancelled (or rejected, opted_out at intake). Submitted is not final: it waits for the "
        "platform's delivery report, which for a scheduled send comes only after its send "
        "time, and may never come; --max-time SECONDS bounds the wait (exit 3), Ctrl-C stops "
        "it (exit 130). Progress lines go to stderr, the final status to stdout."
    ),
)
