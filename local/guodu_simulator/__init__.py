"""A stand-in for the Guodu 企信通 SMS platform, for tests, the local stack and benchmarks.

It implements the provider's interface document strictly (``submitJson``, status-report
pushes) plus the older balance query, records everything it saw, and injects faults on
demand. It imports nothing from the gateway (``smsgw``): it is an independent reading of
the document, so a protocol bug on our side cannot hide behind the same bug here.

In-process::

    from guodu_simulator import Simulator, SimulatorConfig

    config = SimulatorConfig().add_account("demo", "a-test-password", balance=1000)
    config.push.url = "http://127.0.0.1:3000/v1/guodu/push/TOKEN"
    with Simulator(config) as sim:          # port 0: an ephemeral port
        sim.submit_url                       # http://127.0.0.1:PORT/HttpQuickProcess/submitJson
        sim.queue_faults("-1", "-1")         # the next two submits answer -1
        sim.accepted, sim.refused, sim.pushes

Command line (flags override the environment variables below)::

    python -m guodu_simulator --port 9300 --oper-id demo --push-url URL

Environment variables (all optional; the password is never defaulted):

- ``GUODU_SIM_HOST`` / ``GUODU_SIM_PORT``: where to listen (127.0.0.1, CLI 9300).
- ``GUODU_SIM_OPER_ID`` with ``GUODU_SIM_OPER_PASS`` or ``GUODU_SIM_OPER_PASS_FILE``: the
  account; ``GUODU_SIM_ACCOUNT_CODE`` (13), ``GUODU_SIM_BALANCE`` (100000000),
  ``GUODU_SIM_ALLOWED_IPS`` (comma-separated addresses/networks; default any).
- ``GUODU_SIM_SP_NUMBER``: the platform's sp_number (106900).
- ``GUODU_SIM_PUSH_URL``: where reports and MO go (default: no pushes);
  ``GUODU_SIM_DELIVERY_RATIO`` (0.95), ``GUODU_SIM_REPORT_DELAY`` (``0.2-1.0`` seconds),
  ``GUODU_SIM_MO_FORMAT`` (``guodu`` or ``camel``), ``GUODU_SIM_PUSH_FAULTS`` (JSON of
  push settings).
- ``GUODU_SIM_LATENCY_MS`` (``N`` or ``LOW-HIGH``), ``GUODU_SIM_FAULTS`` (JSON of fault
  settings), ``GUODU_SIM_SEED``, ``GUODU_SIM_QUIET`` (1: no per-submit log line).

See README.md beside this file for the admin API and the fault settings.
"""

from guodu_simulator.config import (
    ENV_VARS,
    Account,
    ConfigError,
    FaultConfig,
    PushConfig,
    SimulatorConfig,
    apply_patch,
    config_from_env,
)
from guodu_simulator.protocol import MSG_IDS, java_url_decode, java_url_encode, validate_submit
from guodu_simulator.server import SUBMIT_PATH, SURPLUS_PATH, Simulator
from guodu_simulator.state import PushRecord, RefusedRecord, SubmitRecord

__all__ = [
    "ENV_VARS",
    "MSG_IDS",
    "SUBMIT_PATH",
    "SURPLUS_PATH",
    "Account",
    "ConfigError",
    "FaultConfig",
    "PushConfig",
    "PushRecord",
    "RefusedRecord",
    "Simulator",
    "SimulatorConfig",
    "SubmitRecord",
    "apply_patch",
    "config_from_env",
    "java_url_decode",
    "java_url_encode",
    "validate_submit",
]
