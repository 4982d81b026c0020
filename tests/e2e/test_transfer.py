"""`bastiond export` from one real daemon and `bastiond import` into another that is running: accounts
arrive with their passwords and second factors (they log in there as before, a code still needed where one
was), the collection answers queries as it did, a WebSocket on the receiving daemon hears each
`user.created`, and an export that stopped resumes."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pyotp
import pytest
from argon2 import PasswordHasher, Type

from tests.conftest import next_event
from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, ROOT, Refused, with_admin

DIM = 8
PASSWORD = "moving house password"
SETTINGS = {"BASTION_RATE_LIMIT_PER_MINUTE": "0"}


def _bastiond(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def _matches(daemon, token: str, vector: list[float], namespace: str) -> list[tuple[str, float]]:
    answer = daemon.call("POST", "/api/v1/collections/docs/query",
                         {"vector": vector, "top_k": 5, "namespace": namespace, "include_metadata": True}, token=token)
    return [(m["id"], round(m["score"], 5), m["metadata"]) for m in answer["matches"]]


async def _hear_user_created(url: str, token: str, count: int, started: asyncio.Event) -> set[str]:
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{url}/api/v1/ws") as ws:
        await ws.send_json({"type": "auth", "token": token})
        await ws.send_json({"type": "subscribe", "topics": ["users"]})
        assert (await ws.receive_json(timeout=15))["type"] == "subscribed"
        started.set()
        return {(await next_event(ws, "user.created"))["data"]["email"] for _ in range(count)}


async def test_users_and_a_collection_move_to_a_running_daemon(tmp_path: Path) -> None:
    rng = random.Random(3)
    emails = [f"mover{i}@example.com" for i in range(3)]
    with with_admin(tmp_path / "a", **SETTINGS) as a, with_admin(tmp_path / "b", **SETTINGS) as b:
        token_a = a.admin_token()
        for email in emails:
            a.call("POST", "/api/v1/users", {"email": email, "password": PASSWORD, "role": "user"}, token=token_a)
        # The first mover turns TOTP on where it is: it must need a code where it arrives too.
        mover = a.call("POST", "/api/v1/auth/login", {"email": emails[0], "password": PASSWORD})["access_token"]
        secret = a.call("POST", "/api/v1/auth/mfa/totp", {"password": PASSWORD}, token=mover)["secret"]
        totp = pyotp.TOTP(secret)
        recovery = a.call("POST", "/api/v1/auth/mfa/totp/confirm",
                          {"code": totp.generate_otp(totp.timecode(time.time()) - 1)}, token=mover)["recovery_codes"]
        a.call("POST", "/api/v1/collections", {"name": "docs", "dimension": DIM, "metric": "euclidean"}, token=token_a)
        for namespace, size in (("", 450), ("other", 30)):
            vectors = [{"id": f"{namespace}v{i:04d}", "values": [rng.uniform(-1, 1) for _ in range(DIM)],
                        "metadata": {"i": i, "tag": rng.choice(["x", "y"])}} for i in range(size)]
            a.call("POST", "/api/v1/collections/docs/upsert", {"vectors": vectors, "namespace": namespace}, token=token_a)

        users_file, docs_file = tmp_path / "users.jsonl", tmp_path / "docs.jsonl"
        done = _bastiond("export", "users", "--to", str(users_file), env=a.env())
        assert done.returncode == 0, done.stderr
        assert done.stdout == "wrote 4 users to " + str(users_file) + "\n"
        assert "users: 4/4" in done.stderr  # progress
        assert users_file.stat().st_mode & 0o777 == 0o600  # password hashes and TOTP secrets
        env_a = {**a.env(), "BASTION_TOKEN": token_a}
        done = _bastiond("export", "collection", "docs", "--to", str(docs_file), "--server", a.url, env=env_a)
        assert done.returncode == 0, done.stderr

        # Into B while it runs, with a WebSocket listening there.
        token_b = b.admin_token()
        started = asyncio.Event()
        listener = asyncio.create_task(_hear_user_created(b.url, token_b, len(emails), started))
        await asyncio.wait_for(started.wait(), 15)
        env_b = {**b.env(), "BASTION_TOKEN": token_b}
        done = await asyncio.to_thread(_bastiond, "import", str(users_file), "--server", b.url, env=env_b)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "imported: 3 created, 1 skipped\n"  # B's own admin has that email already
        assert await asyncio.wait_for(listener, 15) == set(emails)
        for email in emails[1:]:
            login = b.call("POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})
            assert b.call("GET", "/api/v1/users/me", token=login["access_token"])["email"] == email
        with pytest.raises(Refused) as refused:  # the password alone is not enough here either
            b.call("POST", "/api/v1/auth/login", {"email": emails[0], "password": PASSWORD})
        assert refused.value.status == 401 and '"mfa_required"' in refused.value.body
        verified = b.call("POST", "/api/v1/auth/mfa/verify", {"mfa_token": json.loads(refused.value.body)["mfa_token"],
                                                              "code": recovery[3]})
        assert verified["user"]["email"] == emails[0] and verified["user"]["mfa_enabled"]
        # Exported from B (its own key unseals the secret B sealed), the movers are what they were on A.
        from_b = tmp_path / "from-b.jsonl"
        done = _bastiond("export", "users", "--to", str(from_b), env=b.env())
        assert done.returncode == 0, done.stderr
        moved = {r["email"]: r for r in map(json.loads, users_file.read_text().splitlines()) if r["email"] in emails}
        again = {r["email"]: r for r in map(json.loads, from_b.read_text().splitlines()) if r["email"] in emails}
        on_a, on_b = moved[emails[0]], again[emails[0]]
        assert on_a["totp"]["secret"] == secret and len(on_a["recovery_codes"]) == 10
        # B spent one recovery code; the other nine moved back unchanged.
        assert len(on_b["recovery_codes"]) == 9 and set(on_b["recovery_codes"]) < set(on_a["recovery_codes"])
        del on_a["recovery_codes"], on_b["recovery_codes"]
        assert again == moved

        done = _bastiond("import", str(docs_file), "--server", b.url, env=env_b)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "imported: 480 upserted\n"
        for namespace in ("", "other"):
            probe = [rng.uniform(-1, 1) for _ in range(DIM)]
            assert _matches(b, token_b, probe, namespace) == _matches(a, token_a, probe, namespace)

        # Again: nothing new, nothing broken (an import that stopped is simply run again).
        again = _bastiond("import", str(users_file), "--server", b.url, env=env_b)
        assert again.stdout == "imported: 0 created, 4 skipped\n"

        # An export that stopped part-way, its last line cut short, resumes where it was.
        whole = docs_file.read_bytes()
        partial = tmp_path / "partial.jsonl"
        partial.write_bytes(whole[: whole.index(b"\n", len(whole) // 2) + 40])
        done = _bastiond("export", "collection", "docs", "--to", str(partial), "--server", a.url, env=env_a)
        assert done.returncode == 1 and "--resume" in done.stderr
        done = _bastiond("export", "collection", "docs", "--to", str(partial), "--resume", "--server", a.url, env=env_a)
        assert done.returncode == 0, done.stderr
        assert partial.read_bytes() == whole

        missing = _bastiond("import", str(users_file), "--server", b.url, env=b.env())
        assert (missing.returncode, missing.stderr) == (
            2, "bastiond: set BASTION_TOKEN to an administrator's access token or admin API key\n")
        assert ADMIN_EMAIL in users_file.read_text()


def test_an_export_that_cannot_open_a_totp_secret_says_so_and_exits_1(tmp_path: Path) -> None:
    """A secret sealed with another key (a database moved without its secrets store) is one line, not a
    traceback; no half-written record is left as if it were whole."""
    with with_admin(tmp_path / "a", **SETTINGS) as a:
        token = a.admin_token()
        secret = a.call("POST", "/api/v1/auth/mfa/totp", {"password": ADMIN_PASSWORD}, token=token)["secret"]
        totp = pyotp.TOTP(secret)
        a.call("POST", "/api/v1/auth/mfa/totp/confirm", {"code": totp.generate_otp(totp.timecode(time.time()) - 1)},
               token=token)
        with sqlite3.connect(a.data_dir / "bastion.sqlite3") as db:  # as if sealed with another key
            db.execute("UPDATE totp_factors SET sealed_secret = randomblob(length(sealed_secret))")
        users_file = tmp_path / "users.jsonl"
        done = _bastiond("export", "users", "--to", str(users_file), env=a.env())
        assert done.returncode == 1 and done.stderr.startswith("bastiond: the TOTP secret of usr_"), done.stderr
        assert "Traceback" not in done.stderr and users_file.read_bytes() == b""


def test_a_file_of_accounts_with_second_factors_goes_in_under_the_body_limit(tmp_path: Path) -> None:
    """1,200 accounts with TOTP, ten recovery codes and a passkey each: 1.5 MB, which a batch of a thousand
    records would carry past the daemon's 1 MiB body limit (413). The importer batches by size too."""
    password_hash = PasswordHasher(type=Type.ID, time_cost=1, memory_cost=8192).hash(PASSWORD)
    users_file = tmp_path / "many.jsonl"
    with users_file.open("w") as out:
        for i in range(1200):
            out.write(json.dumps({
                "id": f"usr_many{i:06d}", "email": f"many{i}@example.com", "password_hash": password_hash,
                "totp": {"secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "confirmed_at": "2026-01-01T00:00:00Z"},
                "recovery_codes": [f"{i:06d}{j:02d}".ljust(64, "a") for j in range(10)],
                "passkeys": [{"id": f"pk_many{i:06d}", "credential_id": f"Y3JlZC{i:06d}", "public_key": "pQECAyYgASFYIA" * 8,
                              "name": "Laptop", "aaguid": "", "created_at": "2026-01-01T00:00:00Z"}],
            }) + "\n")
    assert users_file.stat().st_size * 1000 // 1200 > 1 << 20  # a thousand of them: over 1 MiB
    with with_admin(tmp_path / "b", **SETTINGS) as b:
        env_b = {**b.env(), "BASTION_TOKEN": b.admin_token()}
        done = _bastiond("import", str(users_file), "--server", b.url, env=env_b)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "imported: 1,200 created, 0 skipped\n"
