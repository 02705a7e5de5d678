"""Shared library of the Guodu SMS gateway, shipped to Lambda as a layer.

Packages, from the inside out (a package imports only its own layer and those above it
in this list; ``tests/unit/test_layers.py`` holds them to it):

- ``domain``: the records and rules of the gateway (numbers, segments, states, Beijing
  time, reports, events). No I/O, and nothing from the packages below.
- ``provider``: the Guodu 企信通 wire protocol and its HTTP client. No AWS. The only
  place that writes the platform's text forms (``SendTime``, the request body).
- ``adapters``: DynamoDB, SQS, EventBridge and Secrets Manager access, one owner class
  per stored item kind. No business rules. ``observability`` (logger, metrics) stands
  beside them.
- ``services``: one use case each (accept a send, submit a chunk, show a status).
- ``api``: the public HTTP contract: request models and the one error-to-HTTP mapping.
- ``settings`` and ``wiring``: the environment, read once per container, and one module
  per function that builds its object graph from those settings; the route tables
  (``wiring.routes``) bind HTTP routes to the services of that graph.
"""
