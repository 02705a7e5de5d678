"""``smsgw``: the operator's command line for the gateway's public API (and, for
``redrive``, its send queues), against a deployed stack or the local one.

It is a package of its own (``cli/``), apart from the developer tools under ``local/``:
an operator installs it to work a production stack. Developer commands such as
``simulate-mo`` plug in from ``local/`` (``commands.plugged_in``).

- ``client``: one HTTP client for the v1 contract; API errors and unreachable hosts
  become typed exceptions.
- ``models``: the replies as typed records (the raw JSON is kept for ``--json``).
- ``render``: how replies and errors look on a terminal.
- ``dlq``: moving messages from the send dead-letter queue back to the send queue.
- ``commands``: one module per subcommand, listed in ``commands.OPERATOR_COMMANDS``.
- ``main``: global options, dispatch, and the one mapping from errors to exit codes.
"""
