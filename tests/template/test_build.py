"""`sam build` turns the template into what Lambda runs: checked here, offline."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("SMSGW_TOOLS_BIN") or REPO / ".venv-tools" / "bin")


def _python313() -> str | None:
    env = {**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION", "3.13.0:3.11.7")}
    try:
        found = subprocess.run(
            ["python3.13", "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        return None
    return env["PYENV_VERSION"] if found.returncode == 0 and "(3, 13)" in found.stdout else None


def test_sam_build_ships_the_layer_compiled_for_arm64_python_3_13(tmp_path: Path) -> None:
    pyenv_version = _python313()
    if not (TOOLS / "sam").exists() or pyenv_version is None:
        if os.environ.get("CI"):
            pytest.fail("CI must be able to run sam build: it needs the SAM CLI and a python3.13")
        pytest.skip("sam build needs the SAM CLI (make .venv-tools/.installed) and a python3.13 on PATH")
    # When the template is built the way `make build` builds it
    result = subprocess.run(
        [str(TOOLS / "sam"), "build", "--template", "template.yaml", "--build-dir", str(tmp_path / "build")],
        cwd=REPO,
        env={
            **os.environ,
            "PYENV_VERSION": pyenv_version,
            "SAM_CLI_TELEMETRY": "0",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    layer = tmp_path / "build" / "SharedLayer" / "python"
    # Then the layer holds the library and its dependencies, built for Lambda's arm64 3.13,
    assert (layer / "smsgw" / "provider" / "guodu.py").exists()
    assert list(layer.glob("pydantic_core/*cpython-313-aarch64-linux-gnu.so"))
    # with bytecode compiled ahead of time (Lambda cannot write it: it would recompile
    # the layer at every cold start)
    assert (layer / "smsgw" / "services" / "__pycache__" / "submit.cpython-313.pyc").exists()
    assert not list(layer.rglob("*.cpython-311.pyc"))
    # and each function holds its handler
    for function in (
        "SendApiFunction",
        "SubmitWorkerFunction",
        "PushReceiverFunction",
        "BalanceCheckFunction",
    ):
        assert (tmp_path / "build" / function / "app.py").exists()
    shutil.rmtree(tmp_path / "build", ignore_errors=True)
