"""kill -9 of the daemon in the middle of a stream of writes (users created and renamed, vectors upserted):
after a restart on the same data, every write the daemon acknowledged is there, and each is whole (no
half-applied user)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.daemon_process import ADMIN_EMAIL, start
from tests.faults.client import fetch

WRITERS = 4
WAIT_S = 60.0


def all_users(url: str, token: str) -> dict[str, dict]:
    users, cursor = {}, None
    while True:
        reply = fetch(url + "/api/v1/users?limit=200" + (f"&cursor={cursor}" if cursor else ""), token=token)
        assert reply.status == 200, reply
        page = reply.json()
        users.update({u["email"]: u for u in page["items"]})
        cursor = page["next_cursor"]
        if not cursor:
            return users


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_acknowledged_write_survives_kill_9(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    settings = {"BASTION_RATE_LIMIT_PER_MINUTE": "0"}
    if backend == "postgresql":
        settings["BASTION_DATABASE_URL"] = request.getfixturevalue("pg_url")
    daemon = start(tmp_path / "data", **settings)
    daemon.create_admin()
    token = daemon.admin_token()
    # Each writer owns one user whose display name it bumps, and creates new users between the bumps.
    own = [fetch(daemon.url + "/api/v1/users", "POST", {"email": f"writer{n}@example.com",
                                                       "password": "a long enough password", "role": "user"},
                 token).json()["id"] for n in range(WRITERS)]
    created: list[set[str]] = [set() for _ in range(WRITERS)]
    collection = daemon.url + "/api/v1/collections"
    assert fetch(collection, "POST", {"name": "kill9", "dimension": 4, "metric": "cosine"}, token).status == 201
    upserted: set[str] = set()
    renamed = [-1] * WRITERS
    stop = threading.Event()

    def write(n: int) -> None:
        i = 0
        while not stop.is_set():
            if i % 2:
                email = f"w{n}-{i}@example.com"
                reply = fetch(daemon.url + "/api/v1/users", "POST",
                              {"email": email, "password": "a long enough password", "display_name": f"user {i}"},
                              token, timeout=5)
                if reply.status == 201:
                    created[n].add(email)
            else:
                reply = fetch(daemon.url + f"/api/v1/users/{own[n]}", "PATCH", {"display_name": f"v{i}"}, token,
                              timeout=5)
                if reply.status == 200:
                    renamed[n] = i
            if reply.status == 0:
                return  # the daemon is gone
            assert reply.status in (200, 201), reply
            i += 1

    def upsert() -> None:
        i = 0
        while not stop.is_set():
            vectors = [{"id": f"v{i}-{k}", "values": [1.0, float(i), float(k), 0.5]} for k in range(10)]
            reply = fetch(collection + "/kill9/upsert", "POST", {"vectors": vectors}, token, timeout=5)
            if reply.status == 0:
                return
            assert reply.status == 200, reply
            upserted.update(v["id"] for v in vectors)
            i += 1

    writers = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)] + [threading.Thread(target=upsert)]
    try:
        for t in writers:
            t.start()
        deadline = time.monotonic() + WAIT_S
        while sum(map(len, created)) < 40 or len(upserted) < 50:
            assert time.monotonic() < deadline, "the writes did not get going"
            time.sleep(0.05)
        os.kill(daemon.process.pid, signal.SIGKILL)
        daemon.process.wait()
    finally:
        stop.set()
        for t in writers:
            t.join(WAIT_S)

    again = start(tmp_path / "data", **settings)
    try:
        users = all_users(again.url, again.admin_token())
        for n in range(WRITERS):
            missing = created[n] - set(users)
            assert not missing, f"acknowledged but lost: {sorted(missing)[:5]}"
            # The last acknowledged rename is there, or a later one that was in flight at the kill.
            name = users[f"writer{n}@example.com"]["display_name"]
            assert (int(name.removeprefix("v")) if name else -1) >= renamed[n], (name, renamed[n])
        for email, user in users.items():
            if email == ADMIN_EMAIL or email.startswith("writer"):
                continue
            assert user["role"] == "user" and user["display_name"].startswith("user "), user
            assert user["created_at"] and user["id"], user
        # A user that exists can log in: its password hash was written with it.
        ids = sorted(upserted)
        for start_at in range(0, len(ids), 500):
            reply = fetch(again.url + "/api/v1/collections/kill9/fetch", "POST", {"ids": ids[start_at:start_at + 500]},
                          again.admin_token())
            assert reply.status == 200, reply
            lost = set(ids[start_at:start_at + 500]) - set(reply.json()["vectors"])
            assert not lost, f"{len(lost)} acknowledged vectors lost, e.g. {sorted(lost)[:5]}"
        sample = sorted(set().union(*created))[:3]
        for email in sample:
            login = fetch(again.url + "/api/v1/auth/login", "POST", {"email": email, "password": "a long enough password"})
            assert login.status == 200, login
    finally:
        again.stop()
