"""The top line: where the console is connected, as whom, and whether the live feed is up."""

from __future__ import annotations

from textual.markup import escape
from textual.widgets import Static

from tui.store import Store

LIVE_LABELS = {
    "off": "[dim]○ offline[/]",
    "connecting": "[$warning]◌ connecting[/]",
    "live": "[$success]● live[/]",
    "reconnecting": "[$warning]◌ reconnecting[/]",
}


class StatusLine(Static):
    def __init__(self, store: Store, title: str) -> None:
        super().__init__(id="status")
        self.store, self.title = store, title

    def on_mount(self) -> None:
        self.store.watch(self, lambda parts: self._draw() if parts & {"live", "me", "server"} else None)
        self._draw()

    def on_unmount(self) -> None:
        self.store.unwatch(self)

    def _draw(self) -> None:
        state = self.store.state
        who = f"{escape(state.me.email)} ({state.me.role})" if state.me else "not logged in"
        # The server goes last: on a narrow terminal it is what gets cut.
        self.update(f"{LIVE_LABELS.get(state.live, '')}  [b]{self.title}[/]  {who}  "
                    f"[dim]{escape(state.server.removeprefix('http://'))}[/]")
