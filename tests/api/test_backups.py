"""/api/v1/admin/backups on the real app (SQLite and PostgreSQL): an admin starts a backup, the daemon
writes it with `bastiond backup` in a child process, keeps the newest BASTION_BACKUP_KEEP, and takes them
on its own every BASTION_BACKUP_EVERY."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from daemon.app import create_app
from daemon.backup import archive
from tests.conftest import until
from tests.helpers import problem, signed_up

ROUTE = "/api/v1/admin/backups"
PASSPHRASE = "the scheduled backups' passphrase"


@pytest.fixture
async def backing_up(aiohttp_client, backend_settings, tmp_path: Path):
    settings = dataclasses.replace(backend_settings, backup_passphrase=PASSPHRASE, backup_keep=2,
                                   backup_dir=tmp_path / "backups")
    return await aiohttp_client(create_app(settings))


async def _listing(client, admin) -> dict:
    response = await client.get(ROUTE, headers=admin.headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def _done(client, admin) -> dict:
    async def finished() -> bool:
        return (await _listing(client, admin))["last_run"]["state"] != "running"

    await until(finished, "the backup to finish", within=120)
    listing = await _listing(client, admin)
    assert listing["last_run"]["state"] == "done", listing["last_run"]
    return listing


async def test_an_admin_starts_a_backup_and_the_newest_ones_are_kept(backing_up, tmp_path: Path):
    admin = await signed_up(backing_up, "admin@example.com", "admin")
    names = []
    for turn in range(3):
        response = await backing_up.post(ROUTE, headers=admin.headers)
        assert response.status == 202, await response.text()
        run = await response.json()
        assert run["state"] == "running" and run["name"].endswith(".backup")
        if turn == 0:  # one at a time
            busy = await backing_up.post(ROUTE, headers=admin.headers)
            assert busy.status == 409 and "is being written" in (await problem(busy))["detail"]
        names.append(run["name"])
        listing = await _done(backing_up, admin)
    assert [f["name"] for f in listing["items"]] == names[:0:-1]  # the newest two, newest first
    assert listing["keep"] == 2 and listing["every_s"] is None
    newest = tmp_path / "backups" / names[-1]
    archive.check(newest)
    header = next(archive.lines(newest, PASSPHRASE))
    assert b'"format":1' in header


async def test_a_daemon_stopping_during_a_backup_stops_it_and_leaves_no_partial_archive(backing_up, tmp_path: Path):
    # Before, the child went on writing after the daemon stopped, and its pipe was left open past the event
    # loop (a ResourceWarning that failed whichever test the garbage collector ran in).
    admin = await signed_up(backing_up, "admin@example.com", "admin")
    response = await backing_up.post(ROUTE, headers=admin.headers)
    assert response.status == 202 and (await response.json())["state"] == "running"
    await backing_up.close()  # the app's cleanup runs while `bastiond backup` is still starting
    backups = tmp_path / "backups"
    await asyncio.sleep(5)  # what a child left running would write meanwhile
    assert list(backups.iterdir()) == []


async def test_without_a_passphrase_a_backup_is_refused_and_only_admins_may_ask(api):
    admin = await signed_up(api, "admin@example.com", "admin")
    refused = await api.post(ROUTE, headers=admin.headers)
    assert refused.status == 409
    assert (await problem(refused))["detail"] == "set BASTION_BACKUP_PASSPHRASE on the daemon to take backups"
    alice = await signed_up(api, "alice@example.com")
    for method in ("GET", "POST"):
        response = await api.request(method, ROUTE, headers=alice.headers)
        assert response.status == 403


async def test_backups_are_taken_on_schedule(aiohttp_client, backend_settings, tmp_path: Path):
    # BASTION_BACKUP_EVERY is at least a minute; the test sets the parsed value directly.
    settings = dataclasses.replace(backend_settings, backup_passphrase=PASSPHRASE, backup_keep=2,
                                   backup_dir=tmp_path / "backups", backup_every_s=1)
    client = await aiohttp_client(create_app(settings))
    admin = await signed_up(client, "admin@example.com", "admin")

    async def two_written() -> bool:
        return len((await _listing(client, admin))["items"]) == 2

    await until(two_written, "two scheduled backups", within=120)
    assert (await _listing(client, admin))["every_s"] == 1
