"""A table with a k9s-style `/` filter: type to narrow the rows, `esc` to clear."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input

Row = tuple[str, Sequence[object]]  # (key, cells)


class FilterTable(Vertical):
    BINDINGS = [
        Binding("escape", "close_filter", "Clear filter", id="table.clear_filter", show=False),
    ]

    def __init__(self, *columns: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns = columns
        self.rows: list[Row] = []
        # Made here, not in compose, so a screen can fill the table before it is mounted.
        # The filter is disabled while hidden, so focus never lands in a box nobody can see.
        self.filter_box = Input(placeholder="filter (esc clears)", id="filter", classes="hidden", disabled=True,
                                compact=True)
        self.table: DataTable = DataTable(cursor_type="row", zebra_stripes=True)
        self.table.add_columns(*columns)

    def compose(self) -> ComposeResult:
        yield self.filter_box
        yield self.table

    @property
    def filter_text(self) -> str:
        return self.filter_box.value.strip().lower()

    def show(self, rows: list[Row]) -> None:
        self.rows = rows
        self._draw()

    def _draw(self) -> None:
        table, chosen = self.table, self.selected
        needle = self.filter_text
        table.clear(columns=True)  # and the columns again, so their widths fit the new rows
        table.add_columns(*self.columns)
        for key, cells in self.rows:
            texts = ["" if c is None else str(c) for c in cells]
            if needle and not any(needle in t.lower() for t in texts):
                continue
            table.add_row(*(Text(t) for t in texts), key=key)  # Text: names are data, never markup
        if chosen is not None and chosen in {k for k, _ in self.rows}:
            try:
                table.move_cursor(row=table.get_row_index(chosen))
            except Exception:  # the chosen row is filtered out
                pass

    @property
    def selected(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        try:
            return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        except Exception:
            return None

    def open_filter(self) -> None:
        box = self.filter_box
        box.disabled = False
        box.remove_class("hidden")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._draw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.table.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "close_filter":
            # Only while a filter is open; otherwise `esc` means "back" to the app.
            return not self.filter_box.has_class("hidden")
        return True

    def action_close_filter(self) -> None:
        box = self.filter_box
        box.value = ""
        box.add_class("hidden")
        box.disabled = True
        self.table.focus()
        self._draw()
