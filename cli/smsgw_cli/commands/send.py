"""``smsgw send``: ``POST /v1/messages``, and optionally wait until it is submitted
(``--wait``: nothing queued; delivery is followed by ``smsgw status ID --watch``).

Every send carries an ``Idempotency-Key`` (``--idempotency-key``, or a fresh UUID), so
when the answer is lost or the service fails half-way the error can say exactly how to
repeat the send without anyone receiving it twice.
"""

from __future__ import annotations

import argparse
import re
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from smsgw.domain.model import Category
from smsgw_cli import render, watch
from smsgw_cli.client import ApiError, Unreachable
from smsgw_cli.commands.status import add_interval, heartbeat, positive_seconds, progress, show
from smsgw_cli.context import Command, Context, Exit
from smsgw_cli.models import Accepted

DEFAULT_WAIT = 60.0
# Whatever the API's request model accepts, so the two never drift apart.
CATEGORIES = tuple(category.value for category in Category)
# Numbers in a --to value or a file: one a line, or separated by ASCII or full-width commas.
_SEPARATORS = re.compile(r"[,，\r\n]")


def split_numbers(text: str) -> list[str]:
    """The numbers in ``text`` as written (the API normalises them); ``#`` starts a comment."""
    numbers: list[str] = []
    for line in text.splitlines():
        content = line.split("#", 1)[0]
        numbers.extend(part.strip() for part in _SEPARATORS.split(content) if part.strip())
    return numbers


def decode(data: bytes) -> str:
    """UTF-8 (with or without a BOM), else GB18030: what spreadsheets in China export."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def read_numbers(values: Iterable[str], files: Iterable[str], stdin: BinaryIO) -> list[str]:
    """Every number from ``--to`` values and ``--to-file`` files ('-': stdin), in order."""
    numbers = [n for value in values for n in split_numbers(value)]
    for name in files:
        data = stdin.read() if name == "-" else Path(name).read_bytes()
        numbers.extend(split_numbers(decode(data)))
    return numbers


def request_body(args: argparse.Namespace, numbers: list[str]) -> dict[str, Any]:
    """The JSON body: the fields the user gave, as given."""
    body: dict[str, Any] = {"to": numbers, "content": args.content}
    optional = {
        "send_at": args.send_at,
        "extension": args.extension,
        "reference": args.reference,
        "category": args.category,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


def configure(parser: argparse.ArgumentParser) -> None:
    to = parser.add_argument_group("recipients (at least one)")
    to.add_argument(
        "--to",
        action="append",
        default=[],
        metavar="NUMBER",
        help="a mobile number, or several separated by commas; repeat for more "
        "(+86, 0086, spaces and dashes are fine)",
    )
    to.add_argument(
        "--to-file",
        action="append",
        default=[],
        metavar="FILE",
        help="numbers one a line or comma-separated ('-' for stdin; '#' starts a comment)",
    )
    parser.add_argument("--content", required=True, help="the text, with its 【签名】 signature")
    parser.add_argument(
        "--send-at", metavar="ISO8601", help="when to send, e.g. 2026-12-01T09:30:00+08:00 (no zone: Beijing)"
    )
    parser.add_argument("--extension", metavar="DIGITS", help="digits appended to the sender number")
    parser.add_argument("--reference", help="your own id for this send, echoed in status and events")
    parser.add_argument(
        "--category",
        choices=CATEGORIES,
        help=f"default: {Category.TRANSACTIONAL.value}; {Category.VERIFICATION.value} (one-time "
        f"codes) is frequency-capped by default, {Category.MARKETING.value} skips opted-out numbers and "
        "is held in quiet hours",
    )
    parser.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="repeat a send safely: the same key and body never send twice (default: a new UUID)",
    )
    parser.add_argument(
        "--wait",
        nargs="?",
        type=positive_seconds,
        const=DEFAULT_WAIT,
        metavar="SECONDS",
        help="then poll until no recipient is queued (each submitted to the platform, or failed, "
        f"unknown or expired), for at most SECONDS (default {DEFAULT_WAIT:g}); delivery is not "
        "awaited: follow it with `smsgw status ID --watch`",
    )
    add_interval(parser)


def run(args: argparse.Namespace, ctx: Context) -> int:
    try:
        numbers = read_numbers(args.to, args.to_file, ctx.stdin)
    except OSError as err:
        return ctx.usage_error(f"cannot read {err.filename or 'stdin'}: {err.strerror or err}")
    if not numbers:
        return ctx.usage_error("no recipients: give --to NUMBER or --to-file FILE")
    key: str = args.idempotency_key or str(uuid.uuid4())
    with ctx.client() as client:
        try:
            raw = client.send(request_body(args, numbers), idempotency_key=key)
        except (ApiError, Unreachable) as err:
            return ctx.fail(err, idempotency_key=key)
        accepted = Accepted.from_json(raw)
        wait: float | None = args.wait
        if wait is None:
            if ctx.options.json:
                ctx.say(render.as_json(raw))
            else:
                ctx.say(
                    *render.accepted_lines(accepted), "", f"follow it: smsgw status {accepted.id} --watch"
                )
            return Exit.OK
        if not ctx.options.json:
            ctx.say(*render.accepted_lines(accepted), "")
        ctx.note(f"waiting up to {wait:g}s until nothing is queued…")
        outcome = watch.until(
            client,
            accepted.id,
            watch.submitted,
            interval=args.interval,
            timeout=wait,
            on_change=progress(ctx),
            on_heartbeat=heartbeat(ctx),
            heartbeat=args.heartbeat,
        )
        show(ctx, client, outcome.raw, all_pages=False)
    if not outcome.reached:
        ctx.note(
            f"still {outcome.status.queued} queued after {wait:g}s; "
            f"follow it: smsgw status {accepted.id} --watch"
        )
        return Exit.STILL_PENDING
    if not outcome.status.finished:
        ctx.note(f"follow delivery: smsgw status {accepted.id} --watch")
    return Exit.OK


COMMAND = Command(
    name="send",
    help="send one text to one or more numbers",
    description=(
        "POST /v1/messages: send one text to the given numbers. Prints the request id, the "
        "recipient and segment counts and any rejected numbers."
    ),
    configure=configure,
    run=run,
    epilog=(
        "With --json, prints the 202 reply (with --wait: the last status reply instead). "
        "--wait stops once nothing is queued; it does not wait for delivery reports: "
        "`smsgw status ID --watch` follows them. "
        "Exit 3 when --wait runs out of time with recipients still queued."
    ),
)
