"""Lambda handlers, one folder each. A handler wires observability and calls the library."""
