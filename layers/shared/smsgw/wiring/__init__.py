"""The one place each function's object graph is built: one module per function.

``build(settings, ...)`` makes a function's adapters and services from its ``Settings``
and returns them as a graph with public fields, which its ``functions/*/app.py`` calls
(one call per invocation) and tests read. The seams are the keyword arguments: the AWS
clients (made with ``settings.aws_limits`` when not given), a clock where a service
reads the time. Tests build through the same functions with their own clients or clock.

Each module imports only what its function uses, so a handler's cold start stays small.
"""
