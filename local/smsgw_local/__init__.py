"""The gateway on one machine, with no AWS account and no Docker (``make run``).

- ``template``: reads ``template.yaml`` and resolves its intrinsic functions.
- ``provision``: creates the template's tables, queues and secrets in moto, and
  describes its functions (code, handler, environment, events).
"""
