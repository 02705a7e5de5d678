"""``smsgw``: the operator's command line for the gateway's public API (and, for
``redrive``, its send queues; for ``simulate-mo``, the local Guodu simulator).

- ``client``: one HTTP client for the v1 contract; API errors and unreachable hosts
  become typed exceptions.
- ``models``: the replies as typed records (the raw JSON is kept for ``--json``).
- ``render``: how replies and errors look on a terminal.
- ``dlq``: moving messages from the send dead-letter queue back to the send queue.
- ``commands``: one module per subcommand, registered in ``commands.REGISTRY``.
- ``main``: global options, dispatch, and the one mapping from errors to exit codes.
"""
