"""What the SQLite backend does off the event loop: checkpoints, and writes while another process writes."""

from __future__ import annotations

import asyncio
import sys
import time

from daemon.stores.sql import open_database
from daemon.stores.sql import sqlite as sqlite_store
from daemon.stores.sql.migrate import migrate

INSERT_USER = "INSERT INTO users (id, email, role, password_hash, created_at, updated_at) VALUES (?, ?, 'user', ?, 't', 't')"

# Another process that takes SQLite's write lock, says so, and lets go when told (a line on stdin).
HOLD_THE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO users (id, email, role, password_hash, created_at, updated_at) VALUES ('other', 'o@e.com', 'user', 'h', 't', 't')")
print("holding", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


async def test_a_write_waits_for_another_process_off_the_event_loop(data_dir):
    path = data_dir / "t.sqlite3"
    db = await open_database(None, path)
    await migrate(db)
    other = await asyncio.create_subprocess_exec(sys.executable, "-c", HOLD_THE_LOCK, str(path),
                                                 stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        assert await other.stdout.readline() == b"holding\n"
        write = asyncio.create_task(db.execute(INSERT_USER, "mine", "m@e.com", "h"))
        # The loop keeps running while the write waits: a timer fires on time, and reads are answered.
        started = time.monotonic()
        await asyncio.sleep(0.3)
        assert time.monotonic() - started < 0.5
        assert not write.done()
        assert await db.fetch_all("SELECT id FROM users") == []  # the other's insert is not committed yet
        other.stdin.write(b"go\n")
        await other.stdin.drain()
        assert await asyncio.wait_for(write, 5) == 1
        assert {r["id"] for r in await db.fetch_all("SELECT id FROM users")} == {"other", "mine"}
        # With the lock free again, writes are back on the loop's own connection.
        assert await db.execute("UPDATE users SET email = 'n@e.com' WHERE id = 'mine'") == 1
    finally:
        if other.returncode is None:
            other.kill()
        await other.wait()
        await db.close()


async def test_commits_are_checkpointed_into_the_database_file_in_the_background(data_dir, monkeypatch):
    path = data_dir / "t.sqlite3"
    db = await open_database(None, path)
    await migrate(db)
    await db.close()  # which checkpoints everything: the file holds the schema, and no commit is counted
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 5)
    db = await open_database(None, path)
    size = path.stat().st_size
    blob = "x" * 100_000
    for n in range(4):
        await db.execute(INSERT_USER, f"u{n}", f"u{n}@e.com", blob)
    await asyncio.sleep(0.1)
    assert path.stat().st_size == size  # the commits are in the WAL only: the loop's writer never checkpoints
    await db.execute(INSERT_USER, "u4", "u4@e.com", blob)  # the fifth since the last checkpoint
    for _ in range(50):
        if path.stat().st_size >= size + 400_000:
            break
        await asyncio.sleep(0.1)
    assert path.stat().st_size >= size + 400_000
    await db.close()
