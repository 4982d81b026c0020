"""Read routing against a real streaming replica, built here from this machine's PostgreSQL binaries.

initdb makes a primary on a spare port, pg_basebackup -R copies it into a standby that streams from it.
Which server answered is read from the serving connection itself (pg_is_in_recovery(),
inet_server_port()); pausing WAL replay on the standby shows read-your-writes: a read right after a
write must see it (the primary), a read after the window must not (the paused replica).

The servers are tests/faults/pg_server.py's (PostgreSQL refuses root: under root they run as `postgres`).
"""

from __future__ import annotations

import functools
import os
import pwd
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg2
import pytest

from daemon.stores.sql import read_scope, reads_scoped_to
from daemon.stores.sql.postgres import PostgresDatabase
from tests.conftest import REQUIRE, until
from tests.faults.pg_server import BIN, PgServer, available

WAIT_S = 30.0
WINDOW_S = 5.0
WHO = "SELECT pg_is_in_recovery() AS standby, inet_server_port() AS port"


@dataclass
class Pair:
    primary_port: int
    replica_port: int

    def url(self, port: int) -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def connect(self, port: int):
        conn = psycopg2.connect(self.url(port))
        conn.autocommit = True
        return conn

    @contextmanager
    def cursor(self, port: int):
        conn = self.connect(port)
        try:
            with conn.cursor() as cur:
                yield cur
        finally:
            conn.close()


class FakeClock:
    """The read-your-writes window is measured on this clock, so the test moves time instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    if not available():
        if REQUIRE:
            pytest.fail("PostgreSQL server binaries are required (BASTION_TEST_REQUIRE_SERVICES=1) but not installed")
        pytest.skip("PostgreSQL server binaries (initdb, pg_basebackup) are not installed")
    primary, replica = PgServer().init(), PgServer()
    try:
        primary.start()
        # The standby's data directory is a copy of the primary's; -R makes it follow the primary.
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(replica.root, entry.pw_uid, entry.pw_gid)
        replica._run(str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                     "-D", str(replica.dir), "-R", "-X", "stream", "--no-sync")
        replica.start()
        p = Pair(primary.port, replica.port)
        _wait_streaming(p)
        yield p
    finally:
        replica.destroy()
        primary.destroy()


def _wait_streaming(pair: Pair) -> None:
    """pg_ctl returns once the standby accepts connections; its WAL receiver connects a moment later."""
    deadline = time.monotonic() + WAIT_S
    while True:
        with pair.cursor(pair.primary_port) as cur:
            cur.execute("SELECT state FROM pg_stat_replication")
            if [row[0] for row in cur.fetchall()] == ["streaming"]:
                return
        if time.monotonic() > deadline:
            pytest.fail("the replica did not start streaming from the primary")
        time.sleep(0.05)


@pytest.fixture
async def db(pair: Pair):
    clock = FakeClock()
    database = await PostgresDatabase.open(
        pair.url(pair.primary_port), 2, pair.url(pair.replica_port), read_your_writes_s=WINDOW_S, clock=clock
    )
    database.clock = clock  # type: ignore[attr-defined]
    table = f"t_{os.urandom(4).hex()}"
    await database.execute(f"CREATE TABLE {table} (id int)")
    replica = pair.connect(pair.replica_port)

    def replicated() -> bool:
        with replica.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
            return cur.fetchone()[0]

    await until(replicated, "the table to reach the replica", within=WAIT_S)
    database.table = table  # type: ignore[attr-defined]
    database.replica_conn = replica  # type: ignore[attr-defined]
    yield database
    with replica.cursor() as cur:
        cur.execute("SELECT pg_wal_replay_resume()")
    replica.close()
    await database.close()


async def test_the_replica_is_a_read_only_standby(pair: Pair):
    with pair.cursor(pair.replica_port) as cur:
        cur.execute("SELECT pg_is_in_recovery()")
        assert cur.fetchone() == (True,)
        with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
            cur.execute("CREATE TABLE never (id int)")


async def test_reads_go_to_the_replica_and_writes_and_transactions_to_the_primary(db, pair: Pair):
    db.clock.now += WINDOW_S + 1  # past the window the fixture's CREATE TABLE opened
    assert await db.fetch_one(WHO) == {"standby": True, "port": pair.replica_port}
    assert await db.fetch_all(WHO) == [{"standby": True, "port": pair.replica_port}]
    async with db.transaction() as tx:
        assert await tx.fetch_one(WHO) == {"standby": False, "port": pair.primary_port}
    db.clock.now += WINDOW_S + 1
    # A write through execute() is refused by a standby, so its success shows it reached the primary.
    assert await db.execute(f"INSERT INTO {db.table} VALUES (1)") == 1


async def test_a_read_right_after_a_write_sees_it_while_replay_is_paused(db, pair: Pair):
    with db.replica_conn.cursor() as cur:
        cur.execute("SELECT pg_wal_replay_pause()")
    await db.execute(f"INSERT INTO {db.table} VALUES (1)")

    # Within the window: the primary answers, and the row is there.
    assert await db.fetch_one(WHO) == {"standby": False, "port": pair.primary_port}
    assert await db.fetch_one(f"SELECT count(*) AS n FROM {db.table}") == {"n": 1}

    # After it: the paused replica answers, and does not have the row yet.
    db.clock.now += WINDOW_S + 1
    assert await db.fetch_one(WHO) == {"standby": True, "port": pair.replica_port}
    assert await db.fetch_one(f"SELECT count(*) AS n FROM {db.table}") == {"n": 0}

    with db.replica_conn.cursor() as cur:
        cur.execute("SELECT pg_wal_replay_resume()")

    async def caught_up() -> bool:
        return await db.fetch_one(f"SELECT count(*) AS n FROM {db.table}") == {"n": 1}

    await until(caught_up, "the replica to catch up after replay resumed", within=WAIT_S)
    assert await db.fetch_one(WHO) == {"standby": True, "port": pair.replica_port}


async def test_the_window_belongs_to_the_scope_that_wrote(db, pair: Pair):
    db.clock.now += WINDOW_S + 1
    with db.replica_conn.cursor() as cur:
        cur.execute("SELECT pg_wal_replay_pause()")

    count = f"SELECT count(*) AS n, inet_server_port() AS port FROM {db.table}"
    with reads_scoped_to("alice"):
        await db.execute(f"INSERT INTO {db.table} VALUES (1)")
        alice = await db.fetch_one(count)
    with reads_scoped_to("bob"):
        bob = await db.fetch_one(count)
    assert alice == {"n": 1, "port": pair.primary_port}
    assert bob == {"n": 0, "port": pair.replica_port}
    assert read_scope.get() is None  # restored after each block


async def test_a_replica_connection_that_breaks_sends_the_read_to_the_primary(pair: Pair):
    name = f"bastion-test-{os.urandom(4).hex()}"
    clock = FakeClock()
    database = await PostgresDatabase.open(
        pair.url(pair.primary_port), 1, f"{pair.url(pair.replica_port)}?application_name={name}", 1.0, clock
    )
    try:
        assert (await database.fetch_one(WHO))["port"] == pair.replica_port
        with pair.cursor(pair.replica_port) as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,))
            assert cur.fetchall() == [(True,)]
        assert await database.fetch_one(WHO) == {"standby": False, "port": pair.primary_port}
        assert (await database.fetch_one(WHO))["port"] == pair.replica_port  # a fresh connection next time
    finally:
        await database.close()


async def test_a_write_with_no_scope_keeps_every_scope_on_the_primary(db, pair: Pair):
    db.clock.now += WINDOW_S + 1
    with db.replica_conn.cursor() as cur:
        cur.execute("SELECT pg_wal_replay_pause()")
    await db.execute(f"INSERT INTO {db.table} VALUES (1)")  # e.g. a registration: no caller known yet
    with reads_scoped_to("new-user"):
        assert await db.fetch_one(f"SELECT count(*) AS n, inet_server_port() AS port FROM {db.table}") == {
            "n": 1, "port": pair.primary_port
        }


async def test_through_the_api_a_user_reads_their_own_change_while_others_read_the_replica(
    pair: Pair, aiohttp_client, data_dir, monkeypatch
):
    from daemon.app import create_app
    from daemon.settings import Settings
    from tests.helpers import signed_up

    clock = FakeClock()
    monkeypatch.setattr(PostgresDatabase, "open", functools.partial(PostgresDatabase.open, clock=clock))
    settings = Settings.from_env(
        {}, data_dir=data_dir, database_url=pair.url(pair.primary_port), database_read_url=pair.url(pair.replica_port)
    )
    client = await aiohttp_client(create_app(settings))
    suffix = os.urandom(4).hex()
    user = await signed_up(client, f"user-{suffix}@example.com")
    admin = await signed_up(client, f"admin-{suffix}@example.com", role="admin")
    replica = pair.connect(pair.replica_port)
    try:
        def has_both() -> bool:
            with replica.cursor() as cur:
                cur.execute("SELECT count(*) FROM users WHERE id IN (%s, %s)", (user.id, admin.id))
                return cur.fetchone()[0] == 2

        await until(has_both, "the accounts to reach the replica", within=WAIT_S)
        with replica.cursor() as cur:
            cur.execute("SELECT pg_wal_replay_pause()")
        clock.now += settings.read_your_writes_ms / 1000 + 1  # past the sign-ups' window

        changed = await client.patch("/api/v1/users/me", json={"display_name": "Renamed"}, headers=user.headers)
        assert changed.status == 200, await changed.text()
        mine = await client.get("/api/v1/users/me", headers=user.headers)
        assert (await mine.json())["display_name"] == "Renamed"  # the writer reads the primary
        theirs = await client.get(f"/api/v1/users/{user.id}", headers=admin.headers)
        assert theirs.status == 200
        assert (await theirs.json())["display_name"] != "Renamed"  # another user reads the paused replica
    finally:
        with replica.cursor() as cur:
            cur.execute("SELECT pg_wal_replay_resume()")
        replica.close()
