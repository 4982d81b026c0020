"""A table with a k9s-style `/` filter: type to narrow the rows, `esc` to clear.

Rows are kept by key and changed in place: a live event that changes one user changes that row's cells, a new
one is added at the end, a removed one is removed. Clearing the table and adding every row again (what this
widget did before) cost a second per event at 10,000 rows (bench/tui_table.py measures both).

A screen whose list lives on the server in pages (users) sets `server_filter`: the filter's text then goes to
the screen as `FilterTable.Filtered` (it asks the server, `?q=`), and `FilterTable.NearEnd` says when the
cursor comes near the last row loaded, so it can fetch the next page.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable, Input
from textual.widgets.data_table import CellDoesNotExist

Row = tuple[str, Sequence[object]]  # (key, cells)

NEAR_END_ROWS = 20  # this close to the last loaded row, the next page is asked for
REBUILD_AT = 64  # removing more rows than this at once: start afresh (each removal re-indexes the table)


class FilterTable(Vertical):
    BINDINGS = [
        Binding("escape", "close_filter", "Clear filter", id="table.clear_filter", show=False),
    ]

    class Filtered(Message):
        """The filter's text changed (sent only with `server_filter`)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class NearEnd(Message):
        """The cursor is near the last row loaded (sent only with `server_filter`)."""

    def __init__(self, *columns: str, id: str | None = None, server_filter: bool = False) -> None:
        super().__init__(id=id)
        self.columns = columns
        self.server_filter = server_filter
        self.rows: list[Row] = []
        self._shown: dict[str, tuple[str, ...]] = {}  # what the table holds, by key, in its order
        # Made here, not in compose, so a screen can fill the table before it is mounted.
        # The filter is disabled while hidden, so focus never lands in a box nobody can see.
        self.filter_box = Input(placeholder="filter (esc clears)", id="filter", classes="hidden", disabled=True,
                                compact=True)
        self.table: DataTable = DataTable(cursor_type="row", zebra_stripes=True)
        self._column_keys = self.table.add_columns(*columns)

    def compose(self) -> ComposeResult:
        yield self.filter_box
        yield self.table

    @property
    def filter_text(self) -> str:
        return self.filter_box.value.strip().lower()

    def show(self, rows: Iterable[Row]) -> None:
        """Show these rows, in this order; only what differs from what the table holds is changed."""
        self.rows = list(rows)
        self._draw()

    def _draw(self) -> None:
        needle = "" if self.server_filter else self.filter_text
        wanted: dict[str, tuple[str, ...]] = {}
        for key, cells in self.rows:
            texts = tuple("" if c is None else str(c) for c in cells)
            if needle and not any(needle in t.lower() for t in texts):
                continue
            wanted[key] = texts
        if self._in_place(wanted):
            return
        chosen = self.selected
        table = self.table
        table.clear()
        for key, texts in wanted.items():
            table.add_row(*(Text(t) for t in texts), key=key)  # Text: names are data, never markup
        self._shown = wanted
        if chosen in wanted:
            table.move_cursor(row=table.get_row_index(chosen))

    def _in_place(self, wanted: dict[str, tuple[str, ...]]) -> bool:
        """Change the table into `wanted` cell by cell; False when the order changed or too much went (then
        the caller starts afresh, which is cheaper than that many re-indexing removals)."""
        shown, table = self._shown, self.table
        gone = [key for key in shown if key not in wanted]
        if len(gone) > REBUILD_AT:
            return False
        kept = [key for key in shown if key in wanted]
        if list(wanted)[:len(kept)] != kept:
            return False
        chosen = self.selected
        for key in gone:
            table.remove_row(key)
            del shown[key]
        for key, texts in wanted.items():
            before = shown.get(key)
            if before is None:
                table.add_row(*(Text(t) for t in texts), key=key)
            elif before != texts:
                for column, old, new in zip(self._column_keys, before, texts):
                    if old != new:
                        cell = Text(new)
                        # Widening a column re-lays the whole table out: only when the text does not fit.
                        wider = cell.cell_len > table.columns[column].content_width
                        table.update_cell(key, column, cell, update_width=wider)
            shown[key] = texts
        if gone and chosen in shown:
            table.move_cursor(row=table.get_row_index(chosen))  # the rows above it went: stay on it
        return True

    @property
    def selected(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        try:
            return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        except CellDoesNotExist:
            return None

    def open_filter(self) -> None:
        box = self.filter_box
        box.disabled = False
        box.remove_class("hidden")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self.server_filter:
            self.post_message(self.Filtered(self.filter_text))
        else:
            self._draw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.table.focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # Not stopped: screens show details of the highlighted row.
        if self.server_filter and event.cursor_row >= self.table.row_count - NEAR_END_ROWS:
            self.post_message(self.NearEnd())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "close_filter":
            # Only while a filter is open; otherwise `esc` means "back" to the app.
            return not self.filter_box.has_class("hidden")
        return True

    def action_close_filter(self) -> None:
        box = self.filter_box
        box.value = ""  # its Changed message redraws (or asks the server again)
        box.add_class("hidden")
        box.disabled = True
        self.table.focus()
