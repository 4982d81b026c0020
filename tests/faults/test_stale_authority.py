"""Authorization must not outlive the facts it came from, not even across a restart: an admin who is
deleted, disabled or demoted keeps none of it, on a real daemon restarted on the same data dir, and on
two replicas sharing PostgreSQL and Redis.

The attack of issue 21: a deleted admin's token got 401, the daemon restarted, and the same token listed
users and created a new admin (audited as the deleted user).
"""

from __future__ import annotations

from pathlib import Path

from tests.daemon_process import ADMIN_PASSWORD, Refused, start

NEW_ADMIN = {"email": "mallory2@example.com", "password": "a long enough password", "role": "admin"}


def _status(daemon, method: str, path: str, token: str, body: dict | None = None) -> int:
    try:
        daemon.call(method, path, body, token)
    except Refused as refused:
        return refused.status
    return 200


def test_a_deleted_disabled_or_demoted_admin_has_no_rights_after_a_restart(tmp_path: Path) -> None:
    daemon = start(tmp_path / "data")
    try:
        daemon.create_admin()
        root = daemon.admin_token()
        tokens, ids = {}, {}
        for fate in ("deleted", "disabled", "demoted"):
            email = f"{fate}@example.com"
            ids[fate] = daemon.call("POST", "/api/v1/users", {"email": email, "password": ADMIN_PASSWORD, "role": "admin"},
                                    root)["id"]
            tokens[fate] = daemon.call("POST", "/api/v1/auth/login", {"email": email, "password": ADMIN_PASSWORD})["access_token"]
            assert _status(daemon, "GET", "/api/v1/users", tokens[fate]) == 200
        daemon.call("DELETE", f"/api/v1/users/{ids['deleted']}", None, root)
        daemon.call("PATCH", f"/api/v1/users/{ids['disabled']}", {"disabled": True}, root)
        daemon.call("PATCH", f"/api/v1/users/{ids['demoted']}", {"role": "user"}, root)
        port = int(daemon.url.rsplit(":", 1)[1])
        daemon.stop()
        daemon = start(tmp_path / "data", port)
        for fate, token in tokens.items():
            assert _status(daemon, "GET", "/api/v1/users", token) in (401, 403), fate
            assert _status(daemon, "POST", "/api/v1/users", token, NEW_ADMIN) in (401, 403), fate
        assert _status(daemon, "GET", "/api/v1/users?q=mallory2", root) == 200
        assert daemon.call("GET", "/api/v1/users?q=mallory2", None, root)["items"] == []
    finally:
        daemon.stop()


def test_a_deleted_admins_token_is_refused_by_every_replica_after_they_restart(
        tmp_path: Path, pg_url: str, redis_url: str, redis_prefix: str) -> None:
    """Two replicas sharing PostgreSQL and Redis: the admin is deleted on one, both restart, and neither
    honours the token again (revocation marks in Redis outlive the restart, but a replica whose mirror
    follows the bus does not ask Redis)."""
    shared = {"BASTION_DATABASE_URL": pg_url, "BASTION_REDIS_URL": redis_url, "BASTION_REDIS_PREFIX": redis_prefix,
              "BASTION_SECRET_KEY": "replicas-share-this-at-rest-key-0123456789"}
    a = start(tmp_path / "a", **shared)
    replicas = [a]
    try:
        a.create_admin()
        replicas.append(start(tmp_path / "b", **shared))
        root = a.admin_token()
        gone = a.call("POST", "/api/v1/users", {"email": "gone@example.com", "password": ADMIN_PASSWORD, "role": "admin"},
                      root)["id"]
        b = replicas[1]
        token = b.call("POST", "/api/v1/auth/login", {"email": "gone@example.com", "password": ADMIN_PASSWORD})["access_token"]
        assert _status(b, "GET", "/api/v1/users", token) == 200
        a.call("DELETE", f"/api/v1/users/{gone}", None, root)
        for n, replica in enumerate(replicas):
            port = int(replica.url.rsplit(":", 1)[1])
            replica.stop()
            replicas[n] = start(replica.data_dir, port, **shared)
        for replica in replicas:
            assert _status(replica, "GET", "/api/v1/users", token) == 401
            assert _status(replica, "POST", "/api/v1/users", token, NEW_ADMIN) == 401
    finally:
        for replica in replicas:
            replica.stop()
