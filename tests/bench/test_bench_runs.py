"""The benchmark still runs: its quick mode writes every section and figure of the report.

Timings are never asserted here (they depend on the machine); only that each figure the
report promises is there. The quick mode starts the local stack, so this is an e2e test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import FIGURES, SECTIONS, lookup

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# The quick mode starts two local stacks and worker processes: more than the default 120 s
# on a busy two-core machine.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(360)]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Given the quick mode run into an empty folder."""
    out = tmp_path_factory.mktemp("bench")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GUODU_", "SMSGW_"))}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=330,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_every_report_file_is_written(report: Path) -> None:
    # Then the report, its figures, the cost model and the chart are there
    for name in ("benchmarks.md", "benchmarks.json", "capacity.md"):
        assert (report / name).stat().st_size > 0, name
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib is not installed (requirements-bench.txt): no chart to check")
    assert (report / "benchmarks.png").read_bytes()[:8] == PNG_MAGIC


def test_the_report_holds_every_section(report: Path) -> None:
    text = (report / "benchmarks.md").read_text(encoding="utf-8")
    missing = [section for section in SECTIONS if section not in text]
    assert not missing
    assert "capacity.md" in text


def test_the_figures_hold_every_measurement(report: Path) -> None:
    data = json.loads((report / "benchmarks.json").read_text(encoding="utf-8"))
    assert data["errors"] == {}
    missing = [path for path in FIGURES if lookup(data, path) is None]
    assert not missing
    assert [row["n"] for row in data["summary"]] == [1, 2, 3, "3b", 4, 5, 6, 7, 8, 9, 10, 11]


def test_the_capacity_model_names_the_template_parameters(report: Path) -> None:
    text = (report / "capacity.md").read_text(encoding="utf-8")
    for parameter in ("SubmitMaxConcurrency", "ApiQuotaPerDay", "ApiThrottleRate", "RetentionDays"):
        assert f"`{parameter}`" in text


def test_the_report_can_be_written_again_from_its_figures(report: Path, tmp_path: Path) -> None:
    # Given the figures of a run, When the report is rendered again without measuring
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--render", str(report / "benchmarks.json"), "--out", str(tmp_path)],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Then the same report comes out
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "benchmarks.md").read_text(encoding="utf-8") == (report / "benchmarks.md").read_text(
        encoding="utf-8"
    )
