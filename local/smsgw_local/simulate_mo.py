"""``smsgw simulate-mo MOBILE CONTENT``: have the local Guodu simulator push an inbound (MO)
message to the gateway, as if a person had replied to one of our SMS.

It calls the simulator's admin route ``POST /_sim/mo`` (local/guodu_simulator/README.md);
the simulator then pushes the item to its push URL, which ``make run`` points at the local
push route. Only the simulator is involved: a real platform has no such route.

A developer command: it lives with the local twin, not in the operator's ``smsgw_cli``,
and is plugged into ``smsgw`` through the ``smsgw.commands`` entry point
(``pyproject.toml``), so ``smsgw simulate-mo`` works wherever the developer tools are
installed.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from typing import Any

import requests

from smsgw_cli.context import Command, Context, Exit

DEFAULT_SIMULATOR_PORT = "9300"
MO_PATH = "/_sim/mo"


def default_simulator_url(env: Mapping[str, str]) -> str:
    return f"http://127.0.0.1:{env.get('SMSGW_SIMULATOR_PORT') or DEFAULT_SIMULATOR_PORT}"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mobile", metavar="MOBILE", help="the number the reply comes from, e.g. 13800138000")
    parser.add_argument("content", metavar="CONTENT", help="the text of the reply, e.g. TD")
    parser.add_argument(
        "--append-id",
        default="",
        metavar="ID",
        help="the extension digits the person replied to (the AppendID of a send)",
    )
    parser.add_argument(
        "--simulator-url",
        metavar="URL",
        help="the simulator's base URL "
        f"[default http://127.0.0.1:$SMSGW_SIMULATOR_PORT, port {DEFAULT_SIMULATOR_PORT}]",
    )


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return response.text.strip()[:200] or response.reason or "no explanation"


def _item_lines(item: Mapping[str, Any]) -> list[str]:
    width = max((len(str(key)) for key in item), default=0)
    return [
        f"  {str(key).ljust(width)}  {value if value not in (None, '') else '-'}"
        for key, value in item.items()
    ]


def run(args: argparse.Namespace, ctx: Context) -> int:
    base = (args.simulator_url or default_simulator_url(os.environ)).rstrip("/")
    url = base + MO_PATH
    body = {"mobile": args.mobile, "content": args.content, "append_id": args.append_id}
    try:
        response = requests.post(url, json=body, timeout=ctx.options.timeout, allow_redirects=False)
    except requests.RequestException as err:
        ctx.note(
            f"error: cannot reach the Guodu simulator at {base}: {type(err).__name__}",
            "hint: is `make run` up with its embedded simulator? (not when GUODU_SUBMIT_URL points "
            "elsewhere); its port is SMSGW_SIMULATOR_PORT, or give --simulator-url",
        )
        return Exit.UNAVAILABLE
    if response.status_code == 409:
        ctx.note(
            f"error: the simulator refused: {_error_text(response)}",
            "hint: the simulator pushes only when it has a push URL; "
            "`make run` sets it to the local push route",
        )
        return Exit.REFUSED
    if response.status_code != 202:
        ctx.note(f"error: the simulator answered {response.status_code}: {_error_text(response)}")
        return Exit.REFUSED if response.status_code < 500 else Exit.UNAVAILABLE
    try:
        reply = response.json()
    except ValueError:
        reply = {}
    item = reply.get("queued") if isinstance(reply, dict) else None
    if ctx.options.json:
        ctx.say(json.dumps(reply, ensure_ascii=False, indent=2))
    else:
        ctx.say(
            "queued: the simulator pushes this MO item to the gateway's push URL", *_item_lines(item or {})
        )
    return Exit.OK


COMMAND = Command(
    name="simulate-mo",
    help="have the local Guodu simulator push an inbound reply (MO) to the gateway",
    description=(
        "Ask the local Guodu simulator (POST /_sim/mo) to push an inbound message to the gateway, "
        "as if MOBILE had replied CONTENT. The gateway stores it, announces it on its event bus, "
        "and opts the number out of marketing when CONTENT is an opt-out keyword."
    ),
    configure=configure,
    run=run,
    epilog=(
        "Example: `smsgw simulate-mo 13800138000 TD` (opts the number out of marketing; "
        "see it with GET /v1/opt-outs/13800138000). Exit 2 when the simulator cannot be reached."
    ),
)
