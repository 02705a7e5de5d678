"""Why: the local stack's workers are recorded without any handler knowing (loaded at start-up).

Loaded by Python in every process whose ``PYTHONPATH`` holds this folder.

Only the bench sets that: for the local stack's function workers (through a derived
template), where it installs the AWS request recorder (``SMSGW_BENCH_AWS_LOG_DIR``), and
for its moto servers, where it installs the DynamoDB biller (``SMSGW_BENCH_CAPACITY_DIR``).
Nothing in a handler or in the local stack knows about it.
"""

from __future__ import annotations

import os

if os.environ.get("SMSGW_BENCH_AWS_LOG_DIR"):
    import importlib

    # A top-level module here (this folder is on PYTHONPATH), ``bench.hook._awsrecorder`` in the bench.
    importlib.import_module("_awsrecorder").install(os.environ["SMSGW_BENCH_AWS_LOG_DIR"])
if os.environ.get("SMSGW_BENCH_CAPACITY_DIR"):
    import importlib

    importlib.import_module("_capacity").install(os.environ["SMSGW_BENCH_CAPACITY_DIR"])
