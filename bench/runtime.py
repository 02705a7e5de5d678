"""The runtime-only interpreter, the functions' environments and the layer as it ships.

- ``.venv-runtime`` (Python 3.13, Lambda's runtime version, when pyenv or the PATH has it)
  holds exactly ``layers/shared/requirements.txt`` plus boto3 at the version pinned in
  ``requirements-dev.txt`` (Lambda provides boto3; its exact runtime version varies by
  region and date, see AWS's "Runtime-included SDK versions").
- ``shipped/``: the layer and the function code as ``sam build`` lays them out: the layer's
  distributions unpacked with no bytecode (aws-lambda-builders unpacks wheels itself and
  compiles nothing; ``.aws-sam/build`` holds no ``.pyc``), and a second copy precompiled
  with ``compileall --invalidation-mode unchecked-hash`` (the fix: SAM's zip gives every
  file a 1980 timestamp, so timestamp-checked ``.pyc`` would never validate).
- The functions' environment variables come from ``template.yaml`` itself, resolved by the
  local stack's provisioner against in-process moto, plus the variables Lambda sets.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RUNTIME_VENV = REPO / ".venv-runtime"
LAYER_REQUIREMENTS = REPO / "layers" / "shared" / "requirements.txt"
LAYER_SOURCE = REPO / "layers" / "shared"
FUNCTIONS = REPO / "functions"
EVENTS = REPO / "events"
FALLBACK_BOTO3 = "boto3==1.44.8"
# Installed with boto3 by the runtime, so not part of the layer.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "python-dateutil", "six", "pip", "setuptools"}
BENCH_SECRET = "bench-only-password"  # noqa: S105 - a value for fakes and local simulators
BENCH_PUSH_TOKEN = "bench-push-token"  # noqa: S105


class RuntimeUnavailable(RuntimeError):
    """No runtime-only interpreter could be made."""


@dataclass(frozen=True)
class Runtime:
    python: Path
    version: str
    boto3: str
    fallback: bool  # True: the dev interpreter stands in (quick mode without .venv-runtime)
    note: str = ""


def boto3_pin() -> str:
    for line in (REPO / "requirements-dev.txt").read_text(encoding="utf-8").splitlines():
        if line.strip().lower().startswith("boto3=="):
            return line.strip()
    return FALLBACK_BOTO3


def _stamp() -> str:
    text = LAYER_REQUIREMENTS.read_text(encoding="utf-8") + boto3_pin()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _query(python: Path, code: str) -> Any:
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)


def _describe(python: Path, fallback: bool, note: str = "") -> Runtime:
    info = _query(
        python,
        "import json, sys, importlib.metadata as m; "
        "print(json.dumps([sys.version.split()[0], m.version('boto3')]))",
    )
    return Runtime(python, info[0], info[1], fallback, note)


def _find_python313() -> str | None:
    env = dict(os.environ, PYENV_VERSION=os.environ.get("SMSGW_BENCH_PYENV_VERSION", "3.13.0"))
    for candidate in (os.environ.get("SMSGW_BENCH_RUNTIME_PYTHON"), "python3.13"):
        if not candidate:
            continue
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
                capture_output=True,
                text=True,
                env=env,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "True":
            return candidate
    return None


def ensure_runtime(*, create: bool, log: Any = print) -> Runtime:
    """The runtime-only interpreter; made (or brought up to date) when ``create``."""
    python = RUNTIME_VENV / "bin" / "python"
    stamp = RUNTIME_VENV / ".bench-installed"
    ready = python.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == _stamp()
    if ready:
        return _describe(python, fallback=False)
    if not create:
        return _describe(
            Path(sys.executable),
            fallback=True,
            note=".venv-runtime is not built (quick mode does not build it): the dev interpreter stood in",
        )
    base = _find_python313()
    note = ""
    env = dict(os.environ, PYENV_VERSION=os.environ.get("SMSGW_BENCH_PYENV_VERSION", "3.13.0"))
    if base is None:
        base = sys.executable
        note = "no Python 3.13 found (Lambda's runtime version): .venv-runtime uses " + sys.version.split()[0]
    if not python.exists():
        log(f"creating {RUNTIME_VENV.name} with {base}")
        subprocess.run([base, "-m", "venv", str(RUNTIME_VENV)], check=True, env=env)
    log(f"installing the layer's requirements and {boto3_pin()} into {RUNTIME_VENV.name}")
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-r",
            str(LAYER_REQUIREMENTS),
            boto3_pin(),
        ],
        check=True,
    )
    stamp.write_text(_stamp(), encoding="utf-8")
    return _describe(python, fallback=False, note=note)


# Run by the runtime interpreter: the files of the layer's distributions (its
# requirements and what they need, without what the Lambda runtime provides).
_LAYER_FILES = r"""
import json, sys, importlib.metadata as md
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name
provided = set(json.loads(sys.argv[2]))
todo = [Requirement(l.split("#")[0].strip()) for l in open(sys.argv[1]) if l.split("#")[0].strip()]
seen, files = set(), []
while todo:
    req = todo.pop()
    name = canonicalize_name(req.name)
    if name in seen or name in provided:
        continue
    seen.add(name)
    dist = md.distribution(req.name)
    for f in dist.files or []:
        path = str(f.locate())
        if "__pycache__" in path or path.endswith(".pyc") or "/bin/" in str(f):
            continue
        files.append([str(f), path])
    for text in dist.requires or []:
        sub = Requirement(text)
        if sub.marker is None or sub.marker.evaluate({"extra": ""}):
            todo.append(sub)
print(json.dumps({"dists": sorted(seen), "files": files}))
"""


@dataclass(frozen=True)
class Shipped:
    layer: Path  # the folder Lambda mounts as /opt/python
    functions: Path  # one folder per function, as /var/task
    layer_compiled: Path
    functions_compiled: Path
    dists: list[str]


def build_shipped(runtime: Runtime, dest: Path) -> Shipped:
    """The layer and functions laid out as ``sam build`` ships them, with and without bytecode."""
    raw, compiled = dest / "as-built", dest / "precompiled"
    for folder in (raw, compiled):
        if folder.exists():
            shutil.rmtree(folder)
    layer, functions = raw / "opt" / "python", raw / "task"
    layer.mkdir(parents=True)
    listing = subprocess.run(
        [
            str(runtime.python),
            "-c",
            _LAYER_FILES,
            str(LAYER_REQUIREMENTS),
            json.dumps(sorted(RUNTIME_PROVIDED)),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found = json.loads(listing.stdout)
    for relative, absolute in found["files"]:
        target = layer / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(absolute, target)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(LAYER_SOURCE / "smsgw", layer / "smsgw", ignore=ignore)
    shutil.copytree(FUNCTIONS, functions, ignore=ignore)
    shutil.copytree(raw, compiled)
    subprocess.run(
        [
            str(runtime.python),
            "-m",
            "compileall",
            "-q",
            "-j0",
            "--invalidation-mode",
            "unchecked-hash",
            str(compiled),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return Shipped(layer, functions, compiled / "opt" / "python", compiled / "task", found["dists"])


@dataclass(frozen=True)
class FunctionEnv:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    memory: int
    environment: dict[str, str]
    timeout: int

    @property
    def folder(self) -> str:
        return self.code_dir.name


def function_envs(parameters: Mapping[str, Any] | None = None) -> dict[str, FunctionEnv]:
    """Each function of template.yaml with the environment Lambda would give it (no endpoint
    override: clients are made for the real AWS endpoints and never called)."""
    from moto import mock_aws

    from smsgw_local.provision import provision
    from smsgw_local.runtime import lambda_environment

    with mock_aws():
        provisioned = provision(
            parameters={
                "GuoduSubmitUrl": "http://127.0.0.1:9/HttpQuickProcess/submitJson",
                **dict(parameters or {}),
            },
            secret_values={
                "ProviderSecret": json.dumps({"oper_id": "bench", "oper_pass": BENCH_SECRET}),
                "PushTokenSecret": BENCH_PUSH_TOKEN,
            },
        )
    result: dict[str, FunctionEnv] = {}
    for logical, spec in provisioned.functions.items():
        env = lambda_environment(spec, region="us-east-1", endpoint_url="")
        env.pop("AWS_ENDPOINT_URL", None)
        result[logical] = FunctionEnv(
            logical, spec.name, spec.code_dir, spec.handler, spec.memory, env, spec.timeout
        )
    return result


def handler_env(function: FunctionEnv, **overrides: str) -> dict[str, str]:
    env = dict(function.environment)
    env.update(overrides)
    return env
