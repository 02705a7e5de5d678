"""Use cases, one per module: each takes its adapters as arguments and holds no I/O of its own."""
