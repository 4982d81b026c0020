"""The Procfile's processes are commands bastiond accepts (a platform runs them as they are written)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from daemon.cli import _parser

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"


def _processes() -> dict[str, list[str]]:
    processes = {}
    for line in PROCFILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = shlex.split(command.replace("${PORT:-8420}", "5000"))
    return processes


def test_the_procfile_has_a_web_and_a_release_process():
    processes = _processes()
    assert processes["web"][:2] == ["bastiond", "serve"]
    assert processes["release"] == ["bastiond", "migrate"]


@pytest.mark.parametrize("name", sorted(_processes()))
def test_each_process_is_a_command_bastiond_accepts(name: str):
    argv = _processes()[name]
    args = _parser().parse_args(argv[1:])  # argparse exits on anything it does not accept
    if name == "web":
        assert (args.host, args.port) == ("0.0.0.0", 5000)
