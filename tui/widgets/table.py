"""A table of rows kept by key, with a k9s-style `/` filter: type to narrow the rows, `esc` to clear.

`KeyedTable` draws through Textual's line API: only the rows in view are drawn, and each row's line is kept,
by key, until that row changes. A live event that changes one user re-formats that one row and repaints its
one line. Textual's DataTable, which this replaced, keys every render cache on one counter for the whole
table: changing one cell re-rendered every visible cell and rebuilt its list of row offsets over every row
loaded (35 ms of UI time per event with 100 rows, 86 ms with 10,000; bench/tui_table.py measures it).

A screen whose list lives on the server in pages (users) sets `server_filter`: the filter's text then goes to
the screen as `FilterTable.Filtered` (it asks the server, `?q=`), and `FilterTable.NearEnd` says when the
cursor comes near the last row loaded, so it can fetch the next page.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input

Row = tuple[str, Sequence[object]]  # (key, cells)

NEAR_END_ROWS = 20  # this close to the last loaded row, the next page is asked for
PADDING = 1  # blank cells on each side of a column, as DataTable had
# A cell is one line: control characters (a newline in a name) would break the line into two.
_ONE_LINE = str.maketrans({c: " " for c in [*range(32), 127]})


def _text(cell: object) -> str:
    return "" if cell is None else str(cell)


class KeyedTable(ScrollView, can_focus=True):
    """Rows of text by key; a row cursor; the header stays on top while the rows scroll under it."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "cursor_to(0)", "First row", show=False),
        Binding("end", "cursor_to(-1)", "Last row", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
    ]
    COMPONENT_CLASSES = {"keyed-table--header", "keyed-table--cursor", "keyed-table--even-row",
                         "keyed-table--odd-row"}
    # DataTable's look, which the console had before this widget.
    DEFAULT_CSS = """
    KeyedTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        &:focus {
            background-tint: $foreground 5%;
            & > .keyed-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .keyed-table--header {
                background-tint: $foreground 5%;
            }
        }
        &:dark > .keyed-table--even-row {
            background: $surface-darken-1 40%;
        }
        & > .keyed-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .keyed-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .keyed-table--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .keyed-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    class RowHighlighted(Message):
        """The cursor is on another row (or the row under it is another one)."""

        def __init__(self, table: KeyedTable, cursor_row: int, row_key: str | None) -> None:
            super().__init__()
            self.table, self.cursor_row, self.row_key = table, cursor_row, row_key

        @property
        def control(self) -> KeyedTable:
            return self.table

    def __init__(self, *columns: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns = tuple(columns)
        self._widths = [cell_len(c) for c in columns]
        # The cells as the screen gave them, by key, in the table's order; made text only to be drawn, so that a
        # redraw of thousands of unchanged rows costs a comparison each (equal when the screen kept them).
        self._cells: dict[str, Sequence[object]] = {}
        self._keys: list[str] = []  # the same keys, by row index
        self._index: dict[str, int] = {}
        self._lines: dict[str, str] = {}  # each row's formatted line, kept until the row or a width changes
        self._header = self._format(self.columns)
        self.cursor_row = 0
        self._highlighted: str | None = None  # the key the last RowHighlighted named
        self._resize()

    # -- what the table holds ------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._keys)

    def get_row_index(self, key: str) -> int:
        return self._index[key]

    def get_row_at(self, index: int) -> list[str]:
        return [_text(c) for c in self._cells[self._keys[index]]]

    @property
    def cursor_key(self) -> str | None:
        return self._keys[self.cursor_row] if self._keys else None

    def replace(self, wanted: dict[str, Sequence[object]]) -> None:
        """Hold these rows, in this order. A row whose cells are unchanged keeps its line; when the order is
        unchanged too (a live event changed some rows' cells), only the changed rows' lines are repainted."""
        changed = [key for key, cells in wanted.items() if self._cells.get(key) != cells]
        same_keys = len(wanted) == len(self._keys) and list(wanted) == self._keys
        if not changed and same_keys:
            return
        chosen = self.cursor_key
        widened = False
        for key in changed:
            self._lines.pop(key, None)
            widened |= self._widen(wanted[key])
        self._cells = wanted
        if same_keys:
            if widened:
                self.refresh()
            else:
                for key in changed:
                    self._refresh_row(self._index[key])
            return
        for key in [key for key in self._lines if key not in wanted]:
            del self._lines[key]
        self._keys = list(wanted)
        self._index = {key: i for i, key in enumerate(self._keys)}
        self._resize()
        self.refresh()
        # The cursor stays on the row it was on, wherever that row went; on the same place if it went away.
        self.move_cursor(row=self._index.get(chosen, self.cursor_row) if chosen is not None else 0)

    def _widen(self, cells: Sequence[object]) -> bool:
        """Widen the columns these cells do not fit in (every line is formatted again); True if any was."""
        widths = [max(w, cell_len(_text(c))) for w, c in zip(self._widths, cells)]
        if widths == self._widths:
            return False
        self._widths = widths
        self._lines.clear()
        self._header = self._format(self.columns)
        self._resize()
        return True

    def _resize(self) -> None:
        self.virtual_size = Size(sum(w + 2 * PADDING for w in self._widths), len(self._keys) + 1)

    def _format(self, cells: Sequence[object]) -> str:
        pad = " " * PADDING
        return "".join(pad + set_cell_size(_text(c).translate(_ONE_LINE), w) + pad
                       for c, w in zip(cells, self._widths))

    # -- drawing ------------------------------------------------------------------------------------

    def _refresh_row(self, index: int) -> None:
        """Repaint this row's line, if it is in view (line 0 is the header)."""
        y = index - self.scroll_offset.y + 1
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        if y == 0:
            line, style = self._header, self.get_component_rich_style("keyed-table--header")
        else:
            index = scroll_y + y - 1
            if index >= len(self._keys):
                return Strip.blank(width, base)
            key = self._keys[index]
            line = self._lines.get(key)
            if line is None:
                line = self._lines[key] = self._format(self._cells[key])
            style = base + self.get_component_rich_style(
                "keyed-table--even-row" if index % 2 == 0 else "keyed-table--odd-row")
            if index == self.cursor_row:
                style += self.get_component_rich_style("keyed-table--cursor")
        return Strip([Segment(line, style)]).crop(scroll_x, scroll_x + width).adjust_cell_length(width, style)

    # -- the cursor ---------------------------------------------------------------------------------

    def move_cursor(self, *, row: int) -> None:
        """Put the cursor on this row (clamped to the rows there are) and scroll it into view."""
        before = self.cursor_row
        self.cursor_row = max(0, min(row, len(self._keys) - 1))
        if before != self.cursor_row:
            self._refresh_row(before)
            self._refresh_row(self.cursor_row)
        rows_in_view = max(1, self.size.height - 1)
        scroll_y = self.scroll_offset.y
        if self.cursor_row < scroll_y:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= scroll_y + rows_in_view:
            self.scroll_to(y=self.cursor_row - rows_in_view + 1, animate=False, immediate=True)
        key = self.cursor_key
        if key != self._highlighted or before != self.cursor_row:
            self._highlighted = key
            if key is not None:
                self.post_message(self.RowHighlighted(self, self.cursor_row, key))

    def action_cursor(self, step: int) -> None:
        self.move_cursor(row=self.cursor_row + step)

    def action_page(self, direction: int) -> None:
        self.move_cursor(row=self.cursor_row + direction * max(1, self.size.height - 1))

    def action_cursor_to(self, row: int) -> None:
        self.move_cursor(row=row if row >= 0 else len(self._keys) - 1)

    def on_resize(self) -> None:
        self.move_cursor(row=self.cursor_row)  # a smaller window still shows the cursor

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= 1:
            index = self.scroll_offset.y + offset.y - 1
            if index < len(self._keys):
                self.move_cursor(row=index)


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
        # Made here, not in compose, so a screen can fill the table before it is mounted.
        # The filter is disabled while hidden, so focus never lands in a box nobody can see.
        self.filter_box = Input(placeholder="filter (esc clears)", id="filter", classes="hidden", disabled=True,
                                compact=True)
        self.table = KeyedTable(*columns)

    def compose(self) -> ComposeResult:
        yield self.filter_box
        yield self.table

    @property
    def filter_text(self) -> str:
        return self.filter_box.value.strip().lower()

    def show(self, rows: Iterable[Row]) -> None:
        """Show these rows, in this order; only what differs from what the table holds is drawn again."""
        self.rows = list(rows)
        self._draw()

    def _draw(self) -> None:
        needle = "" if self.server_filter else self.filter_text
        if needle:
            self.table.replace({key: cells for key, cells in self.rows
                                if any(needle in _text(c).lower() for c in cells)})
        else:
            self.table.replace(dict(self.rows))

    @property
    def selected(self) -> str | None:
        return self.table.cursor_key

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

    def on_keyed_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
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
