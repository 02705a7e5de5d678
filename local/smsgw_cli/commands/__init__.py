"""The subcommands, one module each, listed in ``REGISTRY`` in the order ``smsgw --help``
shows them.

To add one: write ``commands/<name>.py`` defining ``COMMAND = Command(...)`` (see
``smsgw_cli.context.Command``), append it here, and add its tests under ``tests/cli``.
A command builds the client it needs from its ``Context`` (``ctx.client()`` for the
public API; a simulator or AWS client for the others).
"""

from __future__ import annotations

from smsgw_cli.commands import cancel, messages, opt_out, redrive, send, simulate_mo, status
from smsgw_cli.context import Command

REGISTRY: tuple[Command, ...] = (
    send.COMMAND,
    status.COMMAND,
    messages.COMMAND,
    cancel.COMMAND,
    opt_out.COMMAND,
    redrive.COMMAND,
    simulate_mo.COMMAND,
)
