"""The console, the command line and the shared client are clients: they reach the daemon through its API or
its `bastiond` command, never by importing it (an import would tie them to its stores and its settings)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon_process import ROOT

CLIENT_PACKAGES = ("tui", "shared")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", CLIENT_PACKAGES)
def test_no_client_module_imports_the_daemon(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    offenders = {str(f.relative_to(ROOT)): sorted(m for m in imported_modules(f) if m.split(".")[0] == "daemon")
                 for f in files}
    assert {f: m for f, m in offenders.items() if m} == {}


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from daemon.stores.sql import open_database\n    import daemon.settings\n")
    assert imported_modules(sample) == {"daemon.stores.sql", "daemon.settings"}


def test_bastiond_info_tells_bastion_up_what_it_needs(tmp_path: Path) -> None:
    env = {**os.environ, "BASTION_DATA_DIR": str(tmp_path / "data"), "BASTION_PORT": "8499", "BASTION_HOST": "0.0.0.0",
           "BASTION_LOG_LEVEL": "warning"}
    done = subprocess.run([sys.executable, "-m", "daemon", "info"], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"url": "http://127.0.0.1:8499", "data_dir": str(tmp_path / "data"), "users": 0}
