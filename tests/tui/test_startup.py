"""The console's first screen does not wait for what only later screens and the commands need
(bench/tui_startup.py times it; this keeps the imports from creeping back)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.tui_startup import BASTION
from tests.daemon_process import ROOT

LATER = ("aiohttp", "pydantic", "shared.client", "shared.models", "tui.screens.dashboard")


@pytest.mark.parametrize("argv", [[], ["--server", "127.0.0.1:8420"]], ids=["bastion", "bastion --server"])
def test_the_first_screen_is_drawn_before_the_client_and_the_models_are_imported(private_dirs: Path, argv) -> None:
    # The bench's own program, reporting what is imported at the moment it would take the time.
    program = BASTION.replace("print(time.monotonic(), flush=True)",
                              f"import sys; print([m for m in {LATER!r} if m in sys.modules], flush=True)")
    program = program.replace("main([])", f"main({argv!r})")
    assert program != BASTION
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "[]"
