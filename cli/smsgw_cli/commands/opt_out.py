"""``smsgw opt-out get|add|remove NUMBER``: the deployment's marketing opt-out list."""

from __future__ import annotations

import argparse

from smsgw_cli import render
from smsgw_cli.client import ApiError
from smsgw_cli.context import Command, Context, Exit

METHODS = {"get": "GET", "add": "PUT", "remove": "DELETE"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=sorted(METHODS), help="see, add or remove the number")
    parser.add_argument("number", help="a mobile number (+86, spaces and dashes are fine)")


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as client:
        try:
            reply = client.opt_out(METHODS[args.action], args.number)
        except ApiError as err:
            if err.status == 404 and err.code == "not_found":
                ctx.say(f"{args.number}: not on the opt-out list")
                return Exit.OK if args.action == "get" else Exit.REFUSED
            raise
    if ctx.options.json:
        ctx.say(render.as_json(reply))
    elif args.action == "remove":
        ctx.say(f"{args.number}: removed from the opt-out list")
    else:
        ctx.say(*render.opt_out_lines(reply))
    return Exit.OK


COMMAND = Command(
    name="opt-out",
    help="see, add or remove a number on the marketing opt-out list",
    description=(
        "GET|PUT|DELETE /v1/opt-outs/{mobile}: marketing skips numbers on the list (people who "
        "replied T, TD, 退订...). The list is the deployment's; each change records its caller."
    ),
    configure=configure,
    run=run,
    epilog="`get` of a number not on the list says so and exits 0; `remove` of one exits 1.",
)
