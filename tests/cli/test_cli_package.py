"""The operator's CLI is a package of its own: it never imports the developer tools, and the
developer command ``simulate-mo`` still reaches ``smsgw`` through its entry point."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from smsgw_cli.main import main

CLI = Path(__file__).resolve().parents[2] / "cli" / "smsgw_cli"
DEVELOPER_TOOLS = ("smsgw_local", "guodu_simulator", "bench", "tests")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_of_the_cli_imports_the_developer_tools() -> None:
    # Given every module of cli/smsgw_cli, Then none imports local/, bench/ or tests/
    offenders = {
        str(path.relative_to(CLI)): sorted(_imported(path) & set(DEVELOPER_TOOLS))
        for path in CLI.rglob("*.py")
        if _imported(path) & set(DEVELOPER_TOOLS)
    }
    assert offenders == {}


def test_the_developer_command_is_plugged_into_smsgw(capsys: pytest.CaptureFixture[str]) -> None:
    # When `smsgw --help` is asked for
    code = main(["--help"])

    # Then it lists the operator's commands and, plugged in from local/, simulate-mo
    out = capsys.readouterr().out
    assert code == 0
    for command in ("send", "status", "messages", "cancel", "opt-out", "redrive", "simulate-mo"):
        assert f"    {command}" in out
