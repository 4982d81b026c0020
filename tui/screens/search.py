"""Search: query a collection by text (keyword, semantic or hybrid), or, as the advanced choice, by a
vector's id or a vector read from a file; with a JSON filter. Matched words are marked in each text."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from tui.highlight import highlight
from tui.inputs import InputError, read_filter, read_vector
from tui.screens.base import StoreScreen
from tui.store import SearchAnswered


# Shown as the user knows them; "semantic" is the API's "vector" mode. Auto: the daemon's default (keyword for
# text alone, hybrid where the collection embeds text or an id or file is given too).
MODES = [("auto", "auto"), ("keyword", "keyword"), ("semantic", "vector"), ("hybrid", "hybrid")]


class SearchScreen(StoreScreen):
    TITLE = "search"
    SUMMARY = "Search a collection by text, or by id or a vector file"
    WATCHES = {"collections", "search"}
    LOADS = ("collections",)
    BINDINGS = [
        Binding("ctrl+r", "run", "Run query", id="search.run"),
    ]

    def __init__(self, collection: str | None = None) -> None:
        super().__init__()
        self.collection = collection

    def body(self) -> ComposeResult:
        with Grid(id="query", classes="form"):
            yield Label("Collection")
            yield Select([], id="collection", prompt="choose a collection", compact=True)
            yield Label("Search")
            yield Input(id="text", placeholder="words to look for", compact=True)
            yield Label("Mode")
            yield Select(MODES, id="mode", value="auto", allow_blank=False, compact=True)
            yield Label("By id")
            yield Input(id="by-id", placeholder="a vector id in the collection", compact=True)
            yield Label("or file")
            yield Input(id="by-file", placeholder="path to a JSON vector", compact=True)
            yield Label("Filter")
            yield Input(id="filter", placeholder='{"genre": "jazz"}', compact=True)
            yield Label("Top k")
            yield Input("10", id="top-k", compact=True)
        with Horizontal(id="run-row"):
            yield Button("Run (ctrl+r)", id="run", variant="primary", compact=True)
            yield Static("", id="problem", classes="error", markup=False)
        results: DataTable = DataTable(id="results", cursor_type="row", zebra_stripes=True)
        results.add_columns("id", "score", "text", "metadata")
        yield results

    def draw(self) -> None:
        state = self.app.store.state
        select = self.query_one("#collection", Select)
        names = sorted(state.collections)
        current = select.value if select.value in names else (self.collection if self.collection in names else None)
        select.set_options([(n, n) for n in names])
        if current is not None:
            select.value = current
        table = self.query_one("#results", DataTable)
        table.clear()
        words = self.query_one("#text", Input).value
        for match in (state.search.matches if state.search else []):
            table.add_row(Text(match.id), f"{match.score:.4f}", highlight(match.text or "", words),
                          Text(json.dumps(match.metadata, separators=(",", ":")) if match.metadata else ""))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_run()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_run()

    def action_run(self) -> None:
        try:
            query = self._query()
        except InputError as exc:
            self.query_one("#problem", Static).update(str(exc))  # beside the fields it is about
            return
        self.query_one("#problem", Static).update("")
        name = query.pop("name")
        self.app.act("search", lambda c: c.query(name, **query), SearchAnswered)

    def _query(self) -> dict[str, Any]:
        name = self.query_one("#collection", Select).value
        if not isinstance(name, str):
            raise InputError("choose a collection first")
        text = self.query_one("#text", Input).value.strip()
        mode = self.query_one("#mode", Select).value
        by_id = self.query_one("#by-id", Input).value.strip()
        by_file = self.query_one("#by-file", Input).value.strip()
        if by_id and by_file:
            raise InputError("give a vector id or a file holding a vector, not both")
        if not (text or by_id or by_file):
            raise InputError("type words to search for (or give a vector id or file)")
        try:
            top_k = int(self.query_one("#top-k", Input).value)
        except ValueError:
            raise InputError("top k is a whole number from 1 to 1000") from None
        return {"name": name, "text": text or None, "mode": None if mode == "auto" else mode,
                "id": by_id or None, "vector": read_vector(by_file) if by_file else None,
                "filter": read_filter(self.query_one("#filter", Input).value), "top_k": top_k,
                "include_text": True}
