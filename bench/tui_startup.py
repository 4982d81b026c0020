"""Time from `bastion` starting to its first screen, beside a bare Textual app measured the same way.

    .venv/bin/python -m bench.tui_startup [--runs N]

Each run is a fresh interpreter that starts the console as the `bastion` command does (`tui.cli.main`, so
every import a user pays is in the figure), headless at 80x24. The figure is the time from launching the
process to the first screen having been composed and refreshed; the child reports that moment (on the
system-wide monotonic clock) and exits, and its teardown is not counted, since nobody waits for it.
The baseline is the smallest Textual app (one Static and a Footer), so the difference is what Bastion
itself costs. The connect screen needs no server: nothing here touches the network. Prints a table; the
median counts.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The child programs print the monotonic time once the first screen is up: its footer (composed last) is
# there and the screen has been refreshed. Bastion runs through its command's own main().
BASTION = """
import time
import tui.app
from tui.cli import main

class FirstScreen(tui.app.BastionApp):
    def on_mount(self):  # BastionApp's on_mount runs as well: Textual calls the handler of every class
        self.poll = self.set_interval(0.005, self.done)

    def done(self):
        from tui.screens.connect import ConnectScreen

        if isinstance(self.screen, ConnectScreen) and self.screen.query("Footer"):
            self.poll.stop()
            self.call_after_refresh(self.shown)

    def shown(self):
        print(time.monotonic(), flush=True)
        self.exit()

    def run(self, **kwargs):
        return super().run(headless=True, size=(80, 24))

tui.app.BastionApp = FirstScreen  # what main() starts
main([])
"""

BARE = """
import time
from textual.app import App
from textual.widgets import Footer, Static

class Bare(App):
    def compose(self):
        yield Static("hello")
        yield Footer()

    def on_mount(self):
        self.poll = self.set_interval(0.005, self.done)

    def done(self):
        if self.screen.query("Footer"):
            self.poll.stop()
            self.call_after_refresh(self.shown)

    def shown(self):
        print(time.monotonic(), flush=True)
        self.exit()

Bare().run(headless=True, size=(80, 24))
"""


def once(program: str, env: dict[str, str]) -> float:
    started = time.monotonic()  # CLOCK_MONOTONIC: the same clock in the child
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=env, check=True, timeout=60,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    return float(done.stdout.split()[0]) - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tui_startup", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    import os

    with tempfile.TemporaryDirectory() as home:
        # A private config and state, so a developer's remembered servers do not change the figure.
        env = {**os.environ, "XDG_CONFIG_HOME": f"{home}/config", "XDG_STATE_HOME": f"{home}/state"}
        once(BARE, env), once(BASTION, env)  # warm the file cache for both
        bare, bastion = [], []
        for _ in range(args.runs):  # interleaved, so a neighbour's load falls on both alike
            bare.append(once(BARE, env))
            bastion.append(once(BASTION, env))
    print(f"TUI start to first screen, {args.runs} runs each, 80x24, headless (seconds)")
    print("| app | median | min | max |")
    print("| --- | --- | --- | --- |")
    for name, times in (("bare Textual app (baseline)", bare), ("bastion (connect screen)", bastion)):
        print(f"| {name} | {statistics.median(times):.3f} | {min(times):.3f} | {max(times):.3f} |")
    print(f"bastion costs {statistics.median(bastion) - statistics.median(bare):+.3f} s over the baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
