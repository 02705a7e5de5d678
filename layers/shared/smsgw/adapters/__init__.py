"""AWS adapters: DynamoDB, SQS and Secrets Manager behind small interfaces.

Clients are created once per container by the handlers and injected here, so tests pass
moto-backed clients and production passes real ones.
"""
