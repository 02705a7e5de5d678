"""Shared library of the Guodu SMS gateway, shipped to Lambda as a layer.

Packages, from the inside out:

- ``domain``: the rules of the gateway (numbers, segments, states, records). No I/O.
- ``provider``: the Guodu 企信通 wire protocol and its HTTP client. No AWS.
- ``adapters``: DynamoDB, SQS and Secrets Manager access. No business rules.
- ``services``: one use case each (accept a send, submit a chunk, show a status).
- ``api``: the public HTTP contract: request models, the route tables (``api.routes``) and
  the one error-to-HTTP mapping.
- ``wiring``: one module per function, building its object graph from its settings.
"""
