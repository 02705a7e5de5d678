"""Why: cold start, CPU and memory must be measured as Lambda loads the code: the runtime-only
interpreter, the functions' environments and the layer as it ships.

- ``.venv-runtime`` (Python 3.13, Lambda's runtime version, when pyenv or the PATH has it)
  holds exactly ``layers/shared/requirements.txt`` plus boto3 at the version pinned in
  ``requirements-dev.txt`` (Lambda provides boto3; its exact runtime version varies by
  region and date, see AWS's "Runtime-included SDK versions").
- ``shipped/``: the layer and the function code as ``sam build`` ships them (its layer is
  built by ``layers/shared/Makefile``: arm64 wheels for 3.13 and bytecode compiled with
  unchecked hashes), with the arm64 native modules swapped for this machine's builds of
  the same versions so that it imports here (``build_shipped``); and the same layer without
  its bytecode, as the default python builder shipped it (compiled at every cold start,
  since Lambda's /opt is read-only).
- The functions' environment variables come from ``template.yaml`` itself, resolved by the
  local stack's provisioner against in-process moto, plus the variables Lambda sets.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
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

TOOLS_BIN = Path(os.environ.get("SMSGW_TOOLS_BIN") or REPO / ".venv-tools" / "bin")
LAMBDA_PLATFORM = "manylinux2014_aarch64"  # what layers/shared/Makefile builds for
HERE_PLATFORM = "manylinux2014_x86_64"
_NATIVE = re.compile(r"-(aarch64|x86_64)-linux-gnu\.so$")


@dataclass(frozen=True)
class Shipped:
    """The layer and the functions as Lambda would load them, importable on this machine."""

    layer: Path  # the folder Lambda mounts as /opt/python, bytecode included
    functions: Path  # one folder per function (named as in functions/), as /var/task
    layer_no_bytecode: Path  # the same files without a .pyc: what the default python builder shipped
    dists: list[str]
    how: str  # how the layer was made, in words for the report
    inventory: dict[str, Any]


def _run(args: list[str], *, what: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed: {(done.stdout + done.stderr).strip()[-1500:]}")
    return done


def _sam_build(dest: Path) -> Path:
    """``sam build`` of template.yaml into ``dest``, as ``make build`` runs it."""
    sam = TOOLS_BIN / "sam"
    if not sam.exists():
        raise RuntimeUnavailable(f"no SAM CLI at {sam} (make .venv-tools/.installed)")
    env = {
        **os.environ,
        "PYENV_VERSION": os.environ.get("PYENV_VERSION", "3.13.0:3.11.7"),
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    args = [str(sam), "build", "--template", "template.yaml", "--build-dir", str(dest)]
    _run(args, what="sam build", cwd=REPO, env=env, timeout=900)
    return dest


def _makefile_build(runtime: Runtime, dest: Path) -> Path:
    """The layer's own Makefile (what ``sam build`` runs for it), for this machine's platform:
    a copy of ``layers/shared`` whose only change is the wheels' platform."""
    source = dest / "src"
    source.mkdir(parents=True)
    makefile = (LAYER_SOURCE / "Makefile").read_text(encoding="utf-8")
    if LAMBDA_PLATFORM not in makefile:
        raise RuntimeUnavailable(f"layers/shared/Makefile does not name {LAMBDA_PLATFORM}")
    (source / "Makefile").write_text(makefile.replace(LAMBDA_PLATFORM, HERE_PLATFORM), encoding="utf-8")
    shutil.copy2(LAYER_REQUIREMENTS, source / "requirements.txt")
    shutil.copytree(LAYER_SOURCE / "smsgw", source / "smsgw", ignore=shutil.ignore_patterns("__pycache__"))
    artifacts = dest / "artifacts"
    _run(
        [
            "make",
            "-s",
            "-C",
            str(source),
            "build-SharedLayer",
            f"ARTIFACTS_DIR={artifacts}",
            f"PYTHON={runtime.python}",
        ],
        what="layers/shared/Makefile for this machine",
        timeout=900,
    )
    return artifacts / "python"


def _files(root: Path) -> dict[str, Path]:
    """A tree's files by their path inside it, the CPU architecture of native modules blanked."""
    return {
        _NATIVE.sub("-ARCH-linux-gnu.so", str(path.relative_to(root))): path
        for path in root.rglob("*")
        if path.is_file() and ".dist-info" not in str(path.relative_to(root))
    }


def _unchecked_hash(pyc: Path) -> bool:
    """A .pyc whose header says: hash-based, source not checked (PEP 552 flags == 0b01)."""
    with pyc.open("rb") as handle:
        header = handle.read(8)
    return len(header) == 8 and int.from_bytes(header[4:8], "little") == 1


def _swap_native(shipped: Path, here: Path) -> dict[str, Any]:
    """Put this machine's build of each native module in place of the arm64 one, after checking
    that the two builds hold the same files (and the same bytecode) otherwise."""
    ours, theirs = _files(shipped), _files(here)
    if set(ours) != set(theirs):
        only = sorted(set(ours) ^ set(theirs))[:5]
        raise RuntimeError(f"the two builds of the layer differ beyond native modules: {only}")
    swapped: list[str] = []
    for relative, path in ours.items():
        if _NATIVE.search(path.name):
            path.unlink()
            target = path.parent / theirs[relative].name
            shutil.copy2(theirs[relative], target)
            swapped.append(str(target.relative_to(shipped)))
    # A .pyc's header: magic (the interpreter), flags (unchecked hash) and its source's hash. The
    # rest embeds the path it was compiled at, which differs between the two builds.
    pycs = [r for r in ours if r.endswith(".pyc")]
    differ = sorted(r for r in pycs if _pyc_header(ours[r]) != _pyc_header(theirs[r]))
    return {
        "native_modules_swapped": sorted(swapped),
        "pyc_same_source_and_flags": len(pycs) - len(differ),
        "pyc_differing": differ,
    }


def _pyc_header(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(16)


def _inventory(layer: Path) -> dict[str, Any]:
    files = [p for p in layer.rglob("*") if p.is_file()]
    pycs = [p for p in files if p.suffix == ".pyc"]
    return {
        "files": len(files),
        "py": sum(p.suffix == ".py" for p in files),
        "pyc": len(pycs),
        "pyc_unchecked_hash": sum(_unchecked_hash(p) for p in pycs),
        "pyc_tags": sorted({p.name.split(".")[-2] for p in pycs}),
        "native_modules": sorted(str(p.relative_to(layer)) for p in files if p.suffix == ".so"),
        "megabytes": round(sum(p.stat().st_size for p in files) / 1e6, 1),
    }


def _copied_from_venv(runtime: Runtime, layer: Path) -> list[str]:
    """The fallback: the layer's distributions as installed in the runtime interpreter, and the
    library, compiled the way layers/shared/Makefile compiles them."""
    listing = _run(
        [
            str(runtime.python),
            "-c",
            _LAYER_FILES,
            str(LAYER_REQUIREMENTS),
            json.dumps(sorted(RUNTIME_PROVIDED)),
        ],
        what="listing the layer's distributions",
        timeout=120,
    )
    found = json.loads(listing.stdout)
    for relative, absolute in found["files"]:
        target = layer / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(absolute, target)
    shutil.copytree(
        LAYER_SOURCE / "smsgw", layer / "smsgw", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    _run(
        [
            str(runtime.python),
            "-m",
            "compileall",
            "-q",
            "-j0",
            "--invalidation-mode",
            "unchecked-hash",
            str(layer),
        ],
        what="compileall",
        timeout=300,
    )
    dists: list[str] = found["dists"]
    return dists


def _dists(layer: Path) -> list[str]:
    return sorted(p.name.split("-")[0].lower().replace("_", "-") for p in layer.glob("*.dist-info"))


def build_shipped(
    runtime: Runtime, functions: Mapping[str, FunctionEnv], dest: Path, *, log: Any = print
) -> Shipped:
    """The layer and functions as ``sam build`` ships them, made importable here.

    ``sam build`` builds the layer for Lambda's arm64 (layers/shared/Makefile): its native
    modules cannot be imported on another CPU. So the same Makefile is also run for this
    machine's platform, the two trees are checked to hold the same files, and only the
    native modules of the ``sam build`` output are replaced by this machine's builds of the
    same versions. Without the SAM CLI, the Makefile's own build for this machine stands
    in; without Python 3.13 either, the runtime venv's packages compiled the same way."""
    if dest.exists():
        shutil.rmtree(dest)
    layer, task, bare = dest / "shipped" / "opt" / "python", dest / "shipped" / "task", dest / "no-bytecode"
    inventory: dict[str, Any] = {}
    built_here: Path | None = None
    sam_output: Path | None = None
    reasons: list[str] = []
    if runtime.version.startswith("3.13"):
        try:
            built_here = _makefile_build(runtime, dest / "here")
            sam_output = _sam_build(dest / "sam")
        except (RuntimeUnavailable, RuntimeError, OSError, subprocess.TimeoutExpired) as err:
            reasons.append(str(err))
            log(f"layer as shipped: {err}")
    else:
        reasons.append(f"the runtime interpreter is Python {runtime.version}, not 3.13")
    if sam_output is not None and built_here is not None:
        shutil.copytree(sam_output / "SharedLayer" / "python", layer)
        inventory = {"sam_build": _inventory(layer), **_swap_native(layer, built_here)}
        for function in functions.values():
            shutil.copytree(sam_output / function.logical_id, task / function.folder)
        how = (
            f"`sam build` (layers/shared/Makefile: wheels for {LAMBDA_PLATFORM}, bytecode compiled"
            f" ahead of time), its {len(inventory['native_modules_swapped'])} native modules replaced by"
            f" this machine's builds of the same versions ({HERE_PLATFORM}, the same Makefile)"
        )
    else:
        if built_here is not None:
            shutil.copytree(built_here, layer)
            how = f"layers/shared/Makefile run for {HERE_PLATFORM} (no `sam build`: {'; '.join(reasons)})"
        else:
            _copied_from_venv(runtime, layer)
            how = (
                "the runtime venv's packages and the library compiled with unchecked hashes, as"
                f" layers/shared/Makefile does (no Makefile build: {'; '.join(reasons)})"
            )
        for function in functions.values():
            shutil.copytree(
                function.code_dir, task / function.folder, ignore=shutil.ignore_patterns("__pycache__")
            )
    inventory["as_loaded"] = _inventory(layer)
    shutil.copytree(layer, bare, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return Shipped(layer, task, bare, _dists(layer), how, inventory)


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


def function_envs(
    parameters: Mapping[str, Any] | None = None, endpoint_url: str = ""
) -> dict[str, FunctionEnv]:
    """Each function of template.yaml with the environment Lambda would give it. With an
    ``endpoint_url`` (a moto server) the resources are made there and every client goes to
    it; without, they are made in an in-process moto and clients are never called."""
    import boto3
    from moto import mock_aws

    from smsgw_local.provision import provision
    from smsgw_local.runtime import lambda_environment

    with contextlib.nullcontext() if endpoint_url else mock_aws():
        provisioned = provision(
            parameters={
                "GuoduSubmitUrl": "http://127.0.0.1:9/HttpQuickProcess/submitJson",
                **dict(parameters or {}),
            },
            secret_values={
                "ProviderSecret": json.dumps({"oper_id": "bench", "oper_pass": BENCH_SECRET}),
                "PushTokenSecret": BENCH_PUSH_TOKEN,
            },
            session=boto3.session.Session(region_name="us-east-1"),
            endpoint_url=endpoint_url or None,
        )
    result: dict[str, FunctionEnv] = {}
    for logical, spec in provisioned.functions.items():
        env = lambda_environment(spec, region="us-east-1", endpoint_url=endpoint_url)
        if not endpoint_url:
            env.pop("AWS_ENDPOINT_URL", None)
        result[logical] = FunctionEnv(
            logical, spec.name, spec.code_dir, spec.handler, spec.memory, env, spec.timeout
        )
    return result


def handler_env(function: FunctionEnv, **overrides: str) -> dict[str, str]:
    env = dict(function.environment)
    env.update(overrides)
    return env
