"""The subcommands, one module each, listed in ``OPERATOR_COMMANDS`` in the order ``smsgw --help``
shows them, followed by the developer commands that other installed packages plug in.

To add one: write ``commands/<name>.py`` defining ``COMMAND = Command(...)`` (see
``smsgw_cli.context.Command``), append it here, and add its tests under ``tests/cli``.
A command builds the client it needs from its ``Context`` (``ctx.client()`` for the
public API; an AWS client for ``redrive``).

Developer commands (``simulate-mo``, which needs the local Guodu simulator) live with the
developer tools under ``local/`` and are plugged in through the ``smsgw.commands`` entry
point group (``pyproject.toml``): this package never imports the developer tools.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from smsgw_cli.commands import cancel, messages, opt_out, redrive, send, status
from smsgw_cli.context import Command

PLUGIN_GROUP = "smsgw.commands"

OPERATOR_COMMANDS: tuple[Command, ...] = (
    send.COMMAND,
    status.COMMAND,
    messages.COMMAND,
    cancel.COMMAND,
    opt_out.COMMAND,
    redrive.COMMAND,
)


def plugged_in() -> tuple[Command, ...]:
    """The commands other installed packages declare in the ``smsgw.commands`` group, by name."""
    found = sorted(entry_points(group=PLUGIN_GROUP), key=lambda point: point.name)
    commands = tuple(point.load() for point in found)
    for command in commands:
        if not isinstance(command, Command):
            raise TypeError(f"{PLUGIN_GROUP} entry point {command!r} is not a smsgw_cli Command")
    return commands


def registry() -> tuple[Command, ...]:
    """Every subcommand: the operator's, then the plugged-in developer commands."""
    known = {command.name for command in OPERATOR_COMMANDS}
    return OPERATOR_COMMANDS + tuple(c for c in plugged_in() if c.name not in known)
