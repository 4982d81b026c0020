"""Device login (RFC 8628), on SQLite and PostgreSQL: the flow, and the abuse of it."""

from __future__ import annotations

import asyncio

from daemon.context import DEVICE
from daemon.services import device as device_service
from tests.api.test_mfa import enrol
from tests.helpers import problem

START = "/api/v1/auth/device"
TOKEN = "/api/v1/auth/device/token"
APPROVE = "/api/v1/auth/device/approve"


async def start(api, name: str = "bastion CLI on build-01") -> dict:
    response = await api.post(START, json={"client_name": name})
    assert response.status == 200, await response.text()
    return await response.json()


async def poll(api, grant: dict) -> tuple[int, dict]:
    response = await api.post(TOKEN, json={"device_code": grant["device_code"]})
    return response.status, await response.json(content_type=None)


def no_wait(monkeypatch, interval_s: int = 0) -> None:
    """Polls are due at once (the interval is the server's to choose; 0 keeps the tests quick)."""
    monkeypatch.setattr(device_service, "INTERVAL_S", interval_s)


async def test_an_approved_device_gets_a_session_of_the_approver(api, alice, monkeypatch):
    no_wait(monkeypatch)
    grant = await start(api)
    assert grant["verification_uri"].endswith("/ui/device") and grant["expires_in"] == 600
    assert grant["verification_uri_complete"] == f"{grant['verification_uri']}?user_code={grant['user_code']}"
    status, body = await poll(api, grant)
    assert (status, body["code"]) == (400, "authorization_pending")

    pending = await (await api.get(f"{START}/pending", headers=alice.headers)).json()
    assert [(p["user_code"], p["client_name"]) for p in pending["items"]] == [(grant["user_code"], "bastion CLI on build-01")]
    typed = grant["user_code"].lower().replace("-", "")  # as a person may type it
    approved = await api.post(APPROVE, json={"user_code": typed, "approve": True}, headers=alice.headers)
    assert approved.status == 200

    status, pair = await poll(api, grant)
    assert status == 200 and pair["user"]["id"] == alice.id
    me = await api.get("/api/v1/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert (await me.json())["id"] == alice.id
    sessions = await (await api.get("/api/v1/auth/sessions", headers=alice.headers)).json()
    assert len(sessions["items"]) == 2  # the device's session is alice's

    # Reused: the tokens went out once.
    status, body = await poll(api, grant)
    assert (status, body["code"]) == (400, "expired_token")
    assert (await (await api.get(f"{START}/pending", headers=alice.headers)).json())["items"] == []


async def test_polling_too_fast_is_told_to_slow_down_and_the_interval_grows(api, monkeypatch):
    no_wait(monkeypatch, 5)
    grant = await start(api)
    assert grant["interval"] == 5
    first, _ = await poll(api, grant)
    status, body = await poll(api, grant)
    assert (first, status, body["code"]) == (400, 400, "slow_down")
    assert "10 seconds" in body["detail"]
    status, body = await poll(api, grant)
    assert body["code"] == "slow_down" and "15 seconds" in body["detail"]


async def test_a_denied_request_is_denied_once_then_expired(api, alice, monkeypatch):
    no_wait(monkeypatch)
    grant = await start(api)
    denied = await api.post(APPROVE, json={"user_code": grant["user_code"], "approve": False}, headers=alice.headers)
    assert denied.status == 200
    assert (await poll(api, grant))[1]["code"] == "access_denied"
    assert (await poll(api, grant))[1]["code"] == "expired_token"
    again = await api.post(APPROVE, json={"user_code": grant["user_code"], "approve": True}, headers=alice.headers)
    assert again.status == 404  # decided already: nobody can approve it afterwards


async def test_an_expired_code_can_be_neither_approved_nor_redeemed(api, alice, monkeypatch):
    no_wait(monkeypatch)
    monkeypatch.setattr(device_service, "LIFETIME", device_service.timedelta(seconds=-1))
    grant = await start(api)
    approved = await api.post(APPROVE, json={"user_code": grant["user_code"], "approve": True}, headers=alice.headers)
    assert approved.status == 404
    assert (await poll(api, grant))[1]["code"] == "expired_token"


async def test_unknown_codes_and_bad_input(api, alice):
    assert (await problem(await api.post(TOKEN, json={"device_code": "made-up"})))["code"] == "expired_token"
    unknown = await api.post(APPROVE, json={"user_code": "BCDF-GHJK", "approve": True}, headers=alice.headers)
    assert unknown.status == 404
    for body in ({"user_code": "BCDF-GHJK", "approve": "yes"}, {"user_code": ""}, {"approve": True}):
        assert (await api.post(APPROVE, json=body, headers=alice.headers)).status == 422
    assert (await api.post(APPROVE, json={"user_code": "BCDF-GHJK", "approve": True})).status == 401
    assert (await api.post(START, json={"client_name": "x" * 101})).status == 422
    assert (await api.post(TOKEN, json={})).status == 422


async def test_an_api_key_cannot_approve(api, alice, monkeypatch):
    no_wait(monkeypatch)
    grant = await start(api)
    key = await (await api.post("/api/v1/auth/api-keys", json={"name": "k", "scopes": ["read", "write"]},
                                headers=alice.headers)).json()
    refused = await api.post(APPROVE, json={"user_code": grant["user_code"], "approve": True},
                             headers={"Authorization": f"Bearer {key['key']}"})
    assert refused.status == 403
    assert (await poll(api, grant))[1]["code"] == "authorization_pending"


async def test_a_session_from_before_mfa_cannot_approve(api, alice, monkeypatch):
    from tests.helpers import login

    no_wait(monkeypatch)
    before = await login(api, alice.email)  # a password-only session
    await enrol(api, alice)
    grant = await start(api)
    refused = await api.post(APPROVE, json={"user_code": grant["user_code"], "approve": True}, headers=before.headers)
    assert refused.status == 403
    # Denying needs no second factor: it grants nothing.
    denied = await api.post(APPROVE, json={"user_code": grant["user_code"], "approve": False}, headers=before.headers)
    assert denied.status == 200


async def test_concurrent_polls_of_an_approved_code_get_the_tokens_once(api, alice, monkeypatch):
    no_wait(monkeypatch)
    grant = await start(api)
    await api.post(APPROVE, json={"user_code": grant["user_code"], "approve": True}, headers=alice.headers)
    answers = await asyncio.gather(*(poll(api, grant) for _ in range(8)))
    assert sorted(status for status, _ in answers).count(200) == 1


async def test_the_device_code_is_stored_only_as_a_hash(api, monkeypatch):
    grant = await start(api)
    rows = await api.app[DEVICE]._rows.db.fetch_all("SELECT * FROM device_grants")
    assert grant["device_code"] not in str(rows)
