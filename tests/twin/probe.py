"""A pool of worker processes for a small function of the test's own: how the twin's
runtime tests (and the fault-seed test of the e2e stack) get a Lambda-like process without
the gateway's handlers."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from smsgw_local.provision import FunctionSpec
from smsgw_local.runtime import FunctionPool, lambda_environment


def probe_pool(
    code_dir: Path,
    source: str,
    *,
    name: str = "probe",
    size: int = 1,
    timeout: int = 10,
    memory: int = 128,
    environment: Mapping[str, str] | None = None,
    layer_dirs: Sequence[Path] = (),
    **options: Any,
) -> FunctionPool:
    """``source`` written as ``code_dir/app.py`` (its ``handler``), as function
    ``smsgw-local-<name>`` with Lambda's environment; ``options`` go to the pool (faults,
    their seed). Not started."""
    (code_dir / "app.py").write_text(textwrap.dedent(source), encoding="utf-8")
    title = name.title()
    spec = FunctionSpec(
        logical_id=f"{title}Function",
        name=f"smsgw-local-{name}",
        code_dir=code_dir,
        handler="app.handler",
        timeout=timeout,
        memory=memory,
        environment=dict(environment or {}),
        layer_dirs=tuple(layer_dirs),
    )
    variables = lambda_environment(spec, region="us-east-1", endpoint_url="http://127.0.0.1:9")
    return FunctionPool(
        spec, variables, size=size, log_prefix=f"{title} | ", invoked_arn=f"arn:{name}", **options
    )
