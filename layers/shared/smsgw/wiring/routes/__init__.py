"""Route tables of the HTTP functions: each registers its routes on a resolver, over the
graph its ``smsgw.wiring`` module built."""
