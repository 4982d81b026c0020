"""What every screen after login shares: the status line, the footer, and watching the store."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer

from tui.widgets.status import StatusLine

if TYPE_CHECKING:
    from tui.app import BastionApp


class StoreScreen(Screen):
    TITLE: ClassVar[str] = ""
    SUMMARY: ClassVar[str] = ""  # the command palette's line for this screen
    WATCHES: ClassVar[set[str]] = set()  # the parts of the store this screen draws
    LOADS: ClassVar[tuple[str, ...]] = ()  # what it asks the app to fetch when it opens

    app: BastionApp
    _stale = False  # changed while another screen was in front

    def compose(self) -> ComposeResult:
        yield StatusLine(self.app.store, self.TITLE)
        yield from self.body()
        yield Footer(compact=True)

    def body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.app.store.watch(self, self._changed)
        self.draw()
        if self.LOADS:
            self.app.load(*self.LOADS)

    def on_unmount(self) -> None:
        self.app.store.unwatch(self)

    def _changed(self, parts: set[str]) -> None:
        if not parts & self.WATCHES:
            return
        # Only the screen in front draws: one under another (the dashboard under the users) catches up when it
        # is back in front, instead of redrawing at every event for nobody. (A popped screen hears changes
        # until its unmount, with nothing to draw them on.)
        if self.app.screen is self:
            try:
                self.draw()
            except NoMatches:
                # An answer that lands while the app closes finds this screen's widgets taken away already
                # (seen once in CI, in run_test's exit); there is nothing left to draw on.
                pass
        else:
            self._stale = True

    def on_screen_resume(self) -> None:
        if self._stale:
            self._stale = False
            self.draw()

    def draw(self) -> None:
        """Redraw from `self.app.store.state`."""
