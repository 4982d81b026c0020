"""The console's users screen with many users: the time to open it and the UI time of one live event, beside
the console as it was (every user loaded, every event clearing the table and adding every row again), in the
same run.

    .venv/bin/python -m bench.tui_table [--users 100000] [--events 20] [--scrolled 10000] [--profile FILE]

A real `bastiond` (embedded SQLite) holds `--users` users, written straight into its database (making them
through the API would hash 100,000 passwords). The console is the real `BastionApp`, headless at 120x40, logged
in with a token from the daemon; nothing goes to the keyring or the state file.

- open: from `:users` until the first page is on the screen and painted (wall time: the HTTP request is in it).
- live event: a `user.updated` for a user on the screen, handed to the app as its WebSocket worker hands it,
  until the screen has been painted with it; the figure is the CPU time the console's process spent (so the
  frame timer's waits are not in it, and the daemon, another process, is not either). Median of `--events`.
  Measured with the first page loaded, and again after the operator has scrolled `--scrolled` rows in.
- baselines, in the same app, with Textual's DataTable (what the console's tables were) in place of the
  screen's table: (1) the console before the table of its own: the event through the store as now, then the
  changed cell updated in place by key (`update_cell`, no re-measured width), timed the same way, with the
  first page and after scrolling; (2) the console before b95ce57: opening loaded every page
  (`Client.iter_users`) and drew all of them, and each event redrew every row: the old table's clear-and-re-add
  (`old_redraw` below, the widget's code then).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.text import Text
from textual.widgets import DataTable

from tests import daemon_process
from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, ROOT

SIZE = (120, 40)


def seed(data_dir: Path, users: int) -> None:
    """Migrate a fresh data dir and write `users` users into its SQLite database."""
    env = {**os.environ, "BASTION_DATA_DIR": str(data_dir), "BASTION_LOG_LEVEL": "warning"}
    subprocess.run([sys.executable, "-m", "daemon", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    stamp = "2026-12-01T00:00:00.000000+00:00"
    with sqlite3.connect(data_dir / "bastion.sqlite3") as db:
        db.executemany(
            "INSERT INTO users (id, email, display_name, role, disabled, password_hash, created_at, updated_at)"
            " VALUES (?, ?, ?, 'user', 0, 'not-a-hash', ?, ?)",
            ((f"usr_bench{i:017d}", f"user{i:06d}@bench.test", f"Bench User {i}", stamp, stamp)
             for i in range(users)))


def old_redraw(table: DataTable, columns: Sequence[str], rows: Sequence[tuple[str, Sequence[object]]]) -> None:
    """The console's table before b95ce57: on every change, clear it, columns too, and add every row again."""
    table.clear(columns=True)
    table.add_columns(*columns)
    for key, cells in rows:
        table.add_row(*(Text("" if c is None else str(c)) for c in cells), key=key)


async def painted(app) -> None:
    """Until the screen has been refreshed with what was just changed."""
    done = asyncio.Event()
    app.call_after_refresh(done.set)
    await done.wait()


async def until(condition: Callable[[], object], what: str, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench.tui_table: timed out waiting for {what}")
        await asyncio.sleep(0.002)


def renamed(user, name: str, n: int) -> dict:
    """A `user.updated` event as the WebSocket brings it."""
    data = user.model_dump(mode="json") | {"display_name": name}
    return {"type": "event", "id": f"{n:020d}", "topic": "users", "event": "user.updated",
            "at": "2026-12-01T00:00:00Z", "data": data}


async def measure(url: str, tokens, args) -> dict[str, float]:
    from shared.client import Client
    from tui import config
    from tui.app import BastionApp, LiveChange
    from tui.screens.dashboard import DashboardScreen
    from tui.screens.users import UsersScreen, _cells
    from tui.store import EventArrived
    from tui.widgets.table import FilterTable

    figures: dict[str, float] = {}
    app = BastionApp(state=config.State(), remember=False)
    async with app.run_test(size=SIZE) as pilot:
        app.resume(url, ADMIN_EMAIL, tokens)
        await until(lambda: isinstance(app.screen, DashboardScreen) and app.store.state.live == "live", "the dashboard")
        await pilot.pause(0.5)

        started = time.perf_counter()
        app.action_open("users")
        await until(lambda: isinstance(app.screen, UsersScreen) and app.screen.query(FilterTable)
                    and app.screen.query_one(FilterTable).table.row_count >= 100, "the first page")
        await painted(app)
        figures["open"] = time.perf_counter() - started

        async def event_cpu(count: int, phase: str) -> float:
            users = list(app.store.state.users.values())
            times = []
            for n in range(count):
                user, name = users[n % 30], f"Renamed {phase} {n}"  # a user on the screen, a name it never had
                before = time.process_time()
                app.post_message(LiveChange(EventArrived(renamed(user, name, n))))
                await until(lambda: app.store.state.users[user.id].display_name == name, "the event")
                await painted(app)
                times.append(time.process_time() - before)
            return statistics.median(times)

        profile = cProfile.Profile() if args.profile else None
        if profile:
            profile.enable()
        figures["event"] = await event_cpu(args.events, "first")
        if profile:
            profile.disable()
            profile.dump_stats(args.profile)
        figures["rows_at_open"] = app.screen.query_one(FilterTable).table.row_count
        while len(app.store.state.users) < args.scrolled and app.store.state.users_cursor:
            loaded = len(app.store.state.users)
            app.load_users(more=True)
            await until(lambda: len(app.store.state.users) > loaded, "the next page")
        await painted(app)
        figures["rows_scrolled"] = app.screen.query_one(FilterTable).table.row_count
        figures["event_scrolled"] = await event_cpu(args.events, "scrolled")

        # The baselines, in the same app and on the same screen: Textual's DataTable in place of the screen's
        # table (which stays, hidden, and still follows the store).
        filter_table = app.screen.query_one(FilterTable)
        columns = filter_table.columns
        old = DataTable(cursor_type="row", zebra_stripes=True)
        old.styles.height = "1fr"
        filter_table.table.display = False
        await filter_table.mount(old)
        column_keys = old.add_columns(*columns)

        async def datatable_event_cpu(count: int, phase: str) -> float:
            """As the console before this change: the event through the store, then the one changed cell
            updated in place by key in the DataTable (which re-renders every visible cell)."""
            users = list(app.store.state.users.values())
            times = []
            for n in range(count):
                user, name = users[n % 30], f"DataTable {phase} {n}"
                before = time.process_time()
                app.post_message(LiveChange(EventArrived(renamed(user, name, n))))
                await until(lambda: app.store.state.users[user.id].display_name == name, "the event")
                old.update_cell(user.id, column_keys[1], Text(name), update_width=False)
                await painted(app)
                times.append(time.process_time() - before)
            return statistics.median(times)

        first_page = list(app.store.state.users.values())[:figures["rows_at_open"]]
        for user in first_page:
            old.add_row(*(Text(c) for c in _cells(user)), key=user.id)
        await painted(app)
        figures["datatable_event"] = await datatable_event_cpu(args.events, "first")
        for user in list(app.store.state.users.values())[len(first_page):]:
            old.add_row(*(Text(c) for c in _cells(user)), key=user.id)
        await painted(app)
        figures["datatable_rows_scrolled"] = old.row_count
        figures["datatable_event_scrolled"] = await datatable_event_cpu(args.events, "scrolled")

        # The console before b95ce57: every page loaded, every row redrawn per event.
        started = time.perf_counter()
        async with Client(url, tokens=tokens) as client:
            everyone = [u async for u in client.iter_users()]
        old_redraw(old, columns, [(u.id, _cells(u)) for u in sorted(everyone, key=lambda u: u.email)])
        await painted(app)
        figures["old_open"] = time.perf_counter() - started
        figures["old_rows"] = old.row_count
        old_times = []
        for n in range(max(1, args.events // 5)):  # seconds each: fewer of them
            before = time.process_time()
            everyone[n] = everyone[n].model_copy(update={"display_name": f"Old {n}"})
            old_redraw(old, columns, [(u.id, _cells(u)) for u in sorted(everyone, key=lambda u: u.email)])
            await painted(app)
            old_times.append(time.process_time() - before)
        figures["old_event"] = statistics.median(old_times)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tui_table", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--scrolled", type=int, default=10_000, help="rows loaded by scrolling, for the 2nd figure")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the first page's live events here "
                        "(their figure is then the profiler's too)")
    args = parser.parse_args(argv)
    from shared.client import Tokens

    with tempfile.TemporaryDirectory() as work:
        data_dir = Path(work) / "bastiond"
        data_dir.mkdir()
        seed(data_dir, args.users)
        with daemon_process.with_admin(data_dir) as running:
            answer = running.call("POST", "/api/v1/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
            figures = asyncio.run(measure(running.url, Tokens.issued(answer), args))
    users = args.users + 1  # and the admin
    print(f"Users screen with {users:,} users, {SIZE[0]}x{SIZE[1]} headless; live event: median CPU time of the "
          f"console's process from the event to the painted screen, {args.events} events")
    print("| | open the users screen (s) | one live event (ms) | rows in the table |")
    print("| --- | --- | --- | --- |")
    print(f"| now: first page, rows changed by key | {figures['open']:.3f} | {figures['event'] * 1000:.1f} "
          f"| {figures['rows_at_open']:,.0f} |")
    print(f"| now, after scrolling | | {figures['event_scrolled'] * 1000:.1f} | {figures['rows_scrolled']:,.0f} |")
    print(f"| before (baseline): DataTable, the cell updated in place by key | | "
          f"{figures['datatable_event'] * 1000:.1f} | {figures['rows_at_open']:,.0f} |")
    print(f"| before (baseline), after scrolling | | {figures['datatable_event_scrolled'] * 1000:.1f} "
          f"| {figures['datatable_rows_scrolled']:,.0f} |")
    print(f"| before b95ce57 (baseline): every page, clear-and-re-add | {figures['old_open']:.3f} "
          f"| {figures['old_event'] * 1000:.1f} | {figures['old_rows']:,.0f} |")
    print("targets: open under 1 s, a live event under 16 ms (one frame)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
