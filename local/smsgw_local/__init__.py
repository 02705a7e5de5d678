"""The gateway on one machine, with no AWS account and no Docker (``make run``).

- ``template``: reads ``template.yaml`` and resolves its intrinsic functions.
- ``provision``: creates the template's tables, queues and secrets in moto, and
  describes its functions (code, handler, environment, events).
- ``moto_server``: the moto server in a process of its own.
- ``runtime`` (and ``_worker``, the process side): each function in worker processes
  that behave like Lambda execution environments (environment, cold start, timeout).
- ``apigw``: the local API Gateway (REST API, proxy events, API keys).
- ``sqs_source``: the SQS event source mapping (poller, partial batch responses).
- ``schedules``: ``rate(...)`` schedules.
- ``aws_faults``: injected AWS faults (``SMSGW_AWS_FAULTS``), a botocore event hook that
  the worker processes install before their handler.
- ``stack``: :class:`LocalGateway`, which starts all of it with the Guodu simulator;
  ``python -m smsgw_local`` runs it until Ctrl-C.
- ``simulate_mo``: the developer command ``smsgw simulate-mo``, plugged into the operator's
  CLI (``cli/smsgw_cli``) through the ``smsgw.commands`` entry point.

Its tests are in ``tests/twin``; the gateway's own tests are the rest of ``tests/``.

Nothing is imported here, so that a worker process (``python -m smsgw_local._worker``)
pays only for its handler's imports; ``from smsgw_local import LocalGateway`` still works.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smsgw_local.stack import LocalGateway

__all__ = ["LocalGateway"]


def __getattr__(name: str) -> Any:
    if name == "LocalGateway":
        from smsgw_local.stack import LocalGateway  # noqa: PLC0415 - see the module docstring

        return LocalGateway
    raise AttributeError(f"module 'smsgw_local' has no attribute {name!r}")
