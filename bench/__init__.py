"""The gateway's benchmarks (``make bench``, ``python -m bench``): see ``bench.__main__``.

Nothing is imported here: the probe and the hook run parts of this folder in processes
that hold only the runtime's dependencies.
"""
