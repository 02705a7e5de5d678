"""Why: the gateway's budgets (``make bench``, ``python -m bench``) are measured here; see ``bench.__main__``.

Nothing is imported here: the probe and the hook run parts of this folder in processes
that hold only the runtime's dependencies.
"""
