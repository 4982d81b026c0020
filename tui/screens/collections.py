"""Collections: list with their stats; create, delete with confirmation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from tui.inputs import METRICS, PRECISIONS
from tui.screens.base import StoreScreen
from tui.screens.dialogs import Confirm, Field, Form
from tui.store import CollectionRemoved, CollectionSaved
from tui.widgets.table import FilterTable

if TYPE_CHECKING:  # pydantic's models load with the first answer, not with the screen
    from shared.models.vectors import IndexState

BUILDING_POLL_S = 2.0


class CollectionsScreen(StoreScreen):
    TITLE = "collections"
    SUMMARY = "Collections: stats, create, delete"
    WATCHES = {"collections"}
    LOADS = ("collections",)
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="resource.filter", key_display="/"),
        Binding("n", "create", "New", id="resource.create"),
        Binding("ctrl+d", "delete", "Delete", id="resource.delete"),
        Binding("s", "search", "Search", id="collections.search"),
        Binding("r", "reload", "Reload", id="resource.reload"),
    ]

    def on_mount(self) -> None:
        # Textual calls StoreScreen.on_mount as well (a handler runs for each class that defines one).
        self.set_interval(BUILDING_POLL_S, self._poll_while_building)

    def _poll_while_building(self) -> None:
        """A graph's build raises no event; while one runs the list is asked for again, so its size and then its
        recall and width show without a keypress."""
        if self.app.screen is self and any(
            index.state == "building" for c in self.app.store.state.collections.values() for index in c.indexes.values()
        ):
            self.app.load("collections")

    def body(self) -> ComposeResult:
        yield FilterTable("name", "dimension", "metric", "precision", "vectors", "namespaces", "created",
                          id="collections")
        yield Static(id="detail", classes="section")

    def draw(self) -> None:
        collections = sorted(self.app.store.state.collections.values(), key=lambda c: c.name)
        self.query_one(FilterTable).show([
            (c.name, (c.name, c.dimension, c.metric, c.precision, c.count, len(c.namespaces),
                      c.created_at.strftime("%Y-%m-%d")))
            for c in collections
        ])
        self._detail()

    def on_keyed_table_row_highlighted(self) -> None:
        self._detail()

    def _detail(self) -> None:
        chosen = self.app.store.state.collections.get(self.query_one(FilterTable).selected or "")
        text = ""
        if chosen is not None:
            spaces = "; ".join(f"{ns or '(default)'}: {n}{_index(chosen.indexes.get(ns))}"
                               for ns, n in sorted(chosen.namespaces.items()))
            text = (f"{chosen.name}: {chosen.count} vectors of {chosen.dimension} ({chosen.metric}, graph "
                    f"{chosen.precision}); {spaces or 'empty'}")
        self.query_one("#detail", Static).update(text)

    def action_filter(self) -> None:
        self.query_one(FilterTable).open_filter()

    def action_reload(self) -> None:
        self.app.load("collections")

    def action_search(self) -> None:
        from tui.screens.search import SearchScreen

        self.app.switch_screen(SearchScreen(self.query_one(FilterTable).selected))

    def action_create(self) -> None:
        def create(form: Form, values: dict[str, str]) -> None:
            try:
                dimension = int(values["dimension"])
            except ValueError:
                form.failed("the dimension is a whole number from 1 to 4096")
                return
            name = values["name"].strip()
            self.app.act("collections.create",
                         lambda c: c.create_collection(name, dimension, values["metric"], precision=values["precision"]),
                         CollectionSaved, notice=f"created {name}", then=form.done)

        self.app.push_screen(Form("New collection", [
            Field("name", "Name", placeholder="a-z, 0-9 and -"), Field("dimension", "Dimension", "384"),
            Field("metric", "Metric", choices=METRICS), Field("precision", "Precision", choices=PRECISIONS),
        ], create))

    def action_delete(self) -> None:
        name = self.query_one(FilterTable).selected
        if not name:
            return

        def delete(yes: bool | None) -> None:
            if yes:
                self.app.act("collections.delete", lambda c: c.delete_collection(name),
                             lambda _: CollectionRemoved(name), notice=f"deleted {name}")

        self.app.push_screen(Confirm(f"Delete the collection {name} and every vector in it?"), delete)


def _index(index: IndexState | None) -> str:
    """How a namespace is searched, as GET /collections/{name} reports it (docs/api.md)."""
    if index is None or index.state == "exact":
        return " (exact)"
    if index.state == "building":
        return f" (graph building: {index.size} in)"
    recall = f", recall {index.recall:.3f}" if index.recall is not None else ""
    return f" (graph ready{recall}, ef {index.ef})"
