"""Every `bastion` and `bastiond` command the README shows is one the real parsers accept, as written: a reader
who copies one (placeholders filled in) must not meet a usage error."""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import re
import shlex
from pathlib import Path

import pytest

from daemon.cli import _parser as bastiond_parser
from tests.daemon_process import ROOT
from tui.cli import _parser as bastion_parser

README = (ROOT / "README.md").read_text()
# Placeholders as the README writes them, and a value a reader might type for each.
FILLED = {"URL": "http://127.0.0.1:8420", "E": "you@example.com", "EMAIL": "you@example.com", "FILE": "out.jsonl",
          "F": "records.jsonl", "F.jsonl": "records.jsonl", "NAME": "docs", "MODEL": "BAAI/bge-small-en-v1.5",
          "H": "0.0.0.0", "P": "8421"}


def _commands() -> list[str]:
    inline = re.findall(r"`(bastiond? [^`]*)`", README)
    blocks = [line.split("#")[0].strip() for block in re.findall(r"```sh\n(.*?)```", README, re.S)
              for line in block.splitlines() if re.match(r"bastiond? ", line)]
    return sorted({c for c in inline + blocks if "--help" not in c})


def _forms(command: str) -> list[list[str]]:
    """The command lines a README entry stands for: `[opt]` brackets dropped (the option typed), each
    `a|b|c` one line per choice, placeholders filled."""
    words = shlex.split(command.replace("[", "").replace("]", ""))
    choices = [word.split("|") if "|" in word else [word] for word in words]
    return [[FILLED.get(w, w) for w in line] for line in itertools.product(*choices)]


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> str:
    """argparse's complaint about argv, or "" when it parses."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(argv)
    except SystemExit as exc:
        return err.getvalue().strip().splitlines()[-1] if exc.code else ""
    return ""


@pytest.mark.parametrize("command", _commands())
def test_the_readme_command_parses_as_written(command: str) -> None:
    program, *_ = command.split()
    parser = bastiond_parser() if program == "bastiond" else bastion_parser()
    for argv in _forms(command):
        if not any(w.startswith("--") for w in argv[1:]):
            # A bare list of actions (`bastion users list|create|disable`) names commands, not whole lines:
            # each must exist (its own options are its --help's business).
            argv = [*argv, "--help"]
        assert _parse(parser, argv[1:]) == "", f"README: `{command}` -> {shlex.join(argv)}"


def test_the_readme_shows_commands() -> None:
    assert len(_commands()) > 20  # the patterns above still find them
