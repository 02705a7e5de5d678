"""Why: the probe runs as a package in the runtime-only interpreter (``python -m bench.probe``)."""
