"""``smsgw messages --to NUMBER | --reference REF``: find the caller's requests, newest first."""

from __future__ import annotations

import argparse

from smsgw_cli import render
from smsgw_cli.context import Command, Context, Exit


def configure(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--to", metavar="NUMBER", help="what was sent to this number")
    which.add_argument("--reference", metavar="REF", help="the requests sent with this reference")
    parser.add_argument(
        "--from", dest="since", metavar="TIME", help="from (ISO 8601, a date, or Unix seconds)"
    )
    parser.add_argument("--until", metavar="TIME", help="until (default: now)")
    parser.add_argument("--limit", type=int, metavar="N", help="per page (1 to 100, default 50)")
    parser.add_argument("--all", action="store_true", help="every page, following next_cursor")


def run(args: argparse.Namespace, ctx: Context) -> int:
    query = {"to": args.to, "reference": args.reference, "from": args.since, "until": args.until}
    if args.limit is not None:
        query["limit"] = str(args.limit)
    params = {k: v for k, v in query.items() if v is not None}
    with ctx.client() as client:
        pages = list(client.message_pages(**params)) if args.all else [client.messages(**params)]
    found = [m for page in pages for m in page.get("messages", [])]
    cursor = pages[-1].get("next_cursor")
    if ctx.options.json:
        ctx.say(render.as_json({"messages": found, "next_cursor": cursor}))
        return Exit.OK
    if not found:
        ctx.say("nothing found")
        return Exit.OK
    ctx.say(*render.message_rows(found))
    if cursor:
        ctx.say("", "more: add --all (or --json for the cursor)")
    return Exit.OK


COMMAND = Command(
    name="messages",
    help="find your requests by --to NUMBER or --reference REF, newest first",
    description="GET /v1/messages: the caller's own requests sent to a number, or with a reference.",
    configure=configure,
    run=run,
    epilog="`smsgw status ID` shows each recipient of one of them.",
)
