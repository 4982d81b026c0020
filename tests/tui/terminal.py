"""A real terminal for the console's end-to-end tests: a private tmux server, typed into and read back."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.conftest import installed

WAIT_S = 30.0


class Terminal:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "console")

    def type(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "console", *keys)

    def wait_for(self, text: str, within: float = WAIT_S) -> str:
        deadline = time.monotonic() + within
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} did not appear within {within}s; the screen shows:\n{screen}")
            time.sleep(0.2)

    def answer_first_admin(self, email: str, password: str, within: float = WAIT_S) -> None:
        """Answer `bastion up`'s questions for the first administrator."""
        self.wait_for("Email:", within)
        self.type("-l", email)
        self.type("Enter")
        for question in ("Password (10 characters or more):", "Repeat it:"):
            self.wait_for(question)
            self.type("-l", password)
            self.type("Enter")

    def type_into_field(self, text: str) -> None:
        """Type into the focused field until it shows `text`: keys sent while the terminal is still being
        set up can be lost, so an incomplete attempt is cleared (ctrl+u) and typed again."""
        deadline = time.monotonic() + WAIT_S
        while True:
            self.type("-l", text)
            try:
                self.wait_for(text, within=3)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                self.type("C-u")



@pytest.fixture
def terminal() -> Iterator[Terminal]:
    installed("tmux")
    yield Terminal(f"bastion-test-{secrets.token_hex(4)}")
