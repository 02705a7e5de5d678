"""Domain rules: pure functions and records, no I/O and no AWS."""
