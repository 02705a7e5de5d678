"""The library's packages depend inwards only, as ``smsgw/__init__.py`` draws them.

Read from the source (``ast``), not by importing it: a lazy import inside a function
counts as much as one at the top, and no module's import side effects run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import smsgw

ROOT = Path(smsgw.__file__).parent

# From the inside out; a module may import its own layer and any layer inside it.
LAYERS = {
    "domain": 0,
    "provider": 1,
    "adapters": 2,
    "observability": 2,  # Powertools' logger and metrics: support for the adapters and up
    "services": 3,
    "api": 4,
    "settings": 5,  # read by the functions' wiring only: may name anything it configures
    "wiring": 6,  # builds each function's object graph: may import every layer
}
# The domain does no I/O: none of these, anywhere in it.
IO_LIBRARIES = {"boto3", "botocore", "requests", "urllib3", "aws_lambda_powertools", "pydantic"}


def _modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if p.name != "__init__.py" or p.parent != ROOT)


def _layer(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def _imports(path: Path, package: str | None = None) -> set[str]:
    """Every module ``path`` imports (absolute names; relative imports resolved against
    ``package``, by default the one ``path`` lies in)."""
    package = package or ".".join(("smsgw", *path.relative_to(ROOT).with_suffix("").parts[:-1]))
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                names.add(node.module)
    return names


def _violations(path: Path) -> list[str]:
    mine = LAYERS[_layer(path)]
    found = []
    for name in sorted(_imports(path)):
        parts = name.split(".")
        if parts[0] != "smsgw" or len(parts) < 2:
            continue
        theirs = LAYERS.get(parts[1])
        if theirs is not None and theirs > mine:
            found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_every_module_belongs_to_a_layer() -> None:
    # Given every module of the library
    # Then each lies in one of the layers the package's docstring names
    assert {_layer(p) for p in _modules()} <= set(LAYERS)
    assert len(_modules()) > 40  # the walk found the library, not an empty folder


@pytest.mark.parametrize("layer", ["domain", "provider", "adapters", "services", "api"])
def test_a_layer_imports_only_layers_inside_it(layer: str) -> None:
    # Given every module of one layer
    modules = [p for p in _modules() if _layer(p) == layer]
    assert modules
    # When their imports are read
    violations = [v for p in modules for v in _violations(p)]
    # Then none reaches outwards
    assert violations == []


def test_the_domain_imports_nothing_but_itself_and_the_standard_library() -> None:
    # Given every module of smsgw.domain
    modules = [p for p in _modules() if _layer(p) == "domain"]
    # When their imports are read
    imported = {name for p in modules for name in _imports(p)}
    # Then no other package of the library, and no I/O library, is among them
    assert {n for n in imported if n.startswith("smsgw.") and not n.startswith("smsgw.domain")} == set()
    assert {n.split(".")[0] for n in imported} & IO_LIBRARIES == set()


def test_the_check_would_catch_an_outward_import(tmp_path: Path) -> None:
    # Given a domain module that imports the provider (as domain/quiet.py once did)
    bad = ROOT / "domain" / "quiet.py"
    source = bad.read_text(encoding="utf-8") + "\nfrom smsgw.provider.guodu import SEND_TIME_FORMAT\n"
    copy = tmp_path / "quiet.py"
    copy.write_text(source, encoding="utf-8")
    # When its imports are checked as the domain's
    mine = LAYERS["domain"]
    imported = _imports(copy, "smsgw.domain")
    outward = [n for n in imported if n.startswith("smsgw.") and LAYERS.get(n.split(".")[1], 0) > mine]
    # Then the outward import is found
    assert outward == ["smsgw.provider.guodu"]


def test_a_chunk_holds_what_one_submit_may_carry() -> None:
    # Given the domain's chunk size and the platform's cap per submit
    from smsgw.domain.model import MAX_NUMBERS_PER_CHUNK
    from smsgw.provider.guodu import MAX_NUMBERS_PER_SUBMIT

    # Then they are the same number (the domain may not import the provider to say so)
    assert MAX_NUMBERS_PER_CHUNK == MAX_NUMBERS_PER_SUBMIT
