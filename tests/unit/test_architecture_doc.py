"""docs/architecture.md names modules, classes and key layouts: each must still exist, so
the document fails a test the day the code moves away from it."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "layers" / "shared" / "smsgw"
DOC = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
CODE = re.findall(r"`([^`\n]+)`", DOC)
# `adapters/chunks.py`, `domain/model.py: ChunkState`, `functions/<name>/app.py`
PATHS = sorted({m.split(":")[0] for m in CODE if re.fullmatch(r"[\w/<>.-]+\.(py|yaml)(: \w+)?", m)})
# `adapters.chunks.ChunkStore`, `ChunkStore.claim_chunk`, `smsgw.wiring.<name>`
DOTTED = sorted({m for m in CODE if re.fullmatch(r"[a-z_]+(\.[A-Za-z_]+)+", m)})


def _file(path: str) -> Path:
    for base in (LIBRARY, REPO):
        if (base / path).exists():
            return base / path
    raise AssertionError(f"docs/architecture.md names {path}, which does not exist")


@pytest.mark.parametrize("path", [p for p in PATHS if "<" not in p])
def test_every_file_the_document_names_exists(path: str) -> None:
    assert _file(path).is_file()


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    if parts[0] != "smsgw":
        parts = ["smsgw", *parts]
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise AssertionError(f"docs/architecture.md names {dotted}, which does not exist")


@pytest.mark.parametrize(
    "dotted",
    [d for d in DOTTED if d.split(".")[0] in {"adapters", "domain", "services", "provider", "api", "smsgw"}],
)
def test_every_module_and_class_the_document_names_exists(dotted: str) -> None:
    assert _resolve(dotted) is not None


def test_the_data_model_names_each_items_owner_where_its_key_is_written() -> None:
    # Each row of the data model: `PK#…` / `SK` | `owner` ; the owner's module writes that key.
    rows = re.findall(r"^\| [^|]+ \| `([A-Z]+)#[^`]*` / [^|]+ \| `([\w.]+)` \|", DOC, re.MULTILINE)
    assert len(rows) >= 10, "the data model table is gone or changed shape"
    owners: dict[str, str] = {}  # a class named bare in a row -> its dotted name in an earlier row
    for prefix, named in rows:
        owner = named if "." in named else owners[named]
        owners[owner.rsplit(".", 1)[-1]] = owner
        module = owner.rsplit(".", 1)[0]
        source = _file(module.replace(".", "/") + ".py").read_text(encoding="utf-8")
        assert f"{prefix}#" in source, f"{owner} does not write {prefix}# items"
        assert isinstance(_resolve(owner), type)
