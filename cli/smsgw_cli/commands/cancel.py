"""``smsgw cancel ID``: call off what of a request has not left for the platform."""

from __future__ import annotations

import argparse

from smsgw_cli import render
from smsgw_cli.context import Command, Context, Exit


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="the request id")


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as client:
        reply = client.cancel(args.id)
    ctx.say(render.as_json(reply) if ctx.options.json else "\n".join(render.cancelled_lines(reply)))
    return Exit.OK


COMMAND = Command(
    name="cancel",
    help="cancel what of a request has not been handed to the platform",
    description=(
        "DELETE /v1/messages/{id}: cancels the recipients not yet handed to the platform (a send "
        "scheduled ahead is held by the gateway until shortly before its time) and says how many "
        "had already left."
    ),
    configure=configure,
    run=run,
    epilog="Cancelling again answers the same counts.",
)
