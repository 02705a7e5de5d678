"""Why: the local stack's workers are recorded without any handler knowing (loaded at start-up).

Loaded by Python in every process whose ``PYTHONPATH`` holds this folder.

Only the bench sets that (for the local stack's function workers, through a derived
template); it installs the AWS request recorder when ``SMSGW_BENCH_AWS_LOG_DIR`` is set.
Nothing in a handler or in the local stack knows about it.
"""

from __future__ import annotations

import os

if os.environ.get("SMSGW_BENCH_AWS_LOG_DIR"):
    import importlib

    # A top-level module here (this folder is on PYTHONPATH), ``bench.hook._awsrecorder`` in the bench.
    importlib.import_module("_awsrecorder").install(os.environ["SMSGW_BENCH_AWS_LOG_DIR"])
