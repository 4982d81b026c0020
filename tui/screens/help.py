"""Help (`?`): every key binding, with the id that remaps it in config.toml."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tui import config

if TYPE_CHECKING:
    from tui.app import BastionApp


REMAP_EXAMPLE = ("resource.create", "a")  # a binding id of the tables' screens (a test checks it is one)


def every_binding(app: BastionApp) -> list[tuple[str, str, str, str]]:
    """(where, keys, what, id) for the app's bindings and every screen's and widget's, as remapped."""
    from tui.screens import screens_by_name
    from tui.screens.dialogs import Confirm, Form, ShownOnce
    from tui.widgets.table import FilterTable

    owners: list[tuple[str, list[BindingType]]] = [("everywhere", list(app.BINDINGS))]
    owners += [(name, list(cls.BINDINGS)) for name, cls in screens_by_name().items()]
    owners += [("tables", list(FilterTable.BINDINGS)), ("confirm", list(Confirm.BINDINGS)),
               ("forms", list(Form.BINDINGS)), ("secret", list(ShownOnce.BINDINGS))]
    remap = app.user_config.keys
    rows = []
    for where, bindings in owners:
        for b in bindings:
            if not isinstance(b, Binding):
                continue
            keys = remap.get(b.id, b.key_display or b.key) if b.id else (b.key_display or b.key)
            rows.append((where, keys, b.description, b.id or ""))
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", id="help.close")]

    app: BastionApp

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static(f"[b]Keys[/]  remap any of them by id in {config.config_dir() / 'config.toml'}, "
                         f'e.g. [keys] "{REMAP_EXAMPLE[0]}" = "{REMAP_EXAMPLE[1]}"', classes="hint", id="remap")
            table: DataTable = DataTable(cursor_type="row", zebra_stripes=True)
            table.add_columns("where", "key", "does", "id")
            for row in every_binding(self.app):
                table.add_row(*(Text(cell) for cell in row))
            yield table

    def action_close(self) -> None:
        self.dismiss(None)
