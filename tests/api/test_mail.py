"""Links by mail (#18, part 4): self-service password reset and email verification, sent to a real SMTP
server (aiosmtpd, tests/smtp_server.py) by the real app, on SQLite and on PostgreSQL. Mail leaves in the
background, so each test waits for the daemon's mail queue to settle before it reads the inbox."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from daemon.app import create_app
from daemon.context import DB, MAIL
from daemon.settings import Settings, SettingsError
from tests.helpers import PASSWORD, create_user, login, problem, signed_up
from tests.smtp_server import self_signed, smtp_server

PUBLIC_URL = "https://bastion.example.com"
ALICE = "alice@example.com"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
async def api(aiohttp_client, backend_settings, inbox):
    """The real app with mail to the test's SMTP server, and open registration."""
    settings = dataclasses.replace(backend_settings, smtp_url=inbox.url, public_url=PUBLIC_URL, registration="open")
    return await aiohttp_client(create_app(settings))


async def _settled(api) -> None:
    await api.app[MAIL].settled()


async def _request_reset(api, email: str, ip: str | None = None):
    headers = {"X-Forwarded-For": ip} if ip else {}
    return await api.post("/api/v1/auth/password-reset/request", json={"email": email}, headers=headers)


async def _audit(api, admin, event: str) -> list[dict]:
    response = await api.get("/api/v1/audit", params={"event": event}, headers=admin.headers)
    return (await response.json())["items"]


async def test_a_reset_link_by_mail_sets_a_new_password_once_and_ends_every_session(api, inbox):
    admin = await signed_up(api, "admin@example.com", "admin")
    alice = await signed_up(api, ALICE)
    other_session = await login(api, ALICE)

    asked = await _request_reset(api, "  Alice@Example.com ")  # as typed: case and spaces do not matter
    assert asked.status == 202 and await asked.read() == b""
    await _settled(api)
    (mail,) = inbox.to(ALICE)
    assert mail["Subject"] == "Reset your Bastion password"
    # The token rides in the link's fragment, which browsers never send to a server.
    assert inbox.link(mail).startswith(f"{PUBLIC_URL}/ui/reset#token=prt_")
    body = {"reset_token": inbox.token(mail), "new_password": NEW_PASSWORD}

    assert (await api.post("/api/v1/auth/password-reset", json=body)).status == 204
    # Every session of hers ended: access tokens and refresh tokens alike.
    for session in (alice, other_session):
        assert (await api.get("/api/v1/users/me", headers=session.headers)).status == 401
        refreshed = await api.post("/api/v1/auth/refresh", json={"refresh_token": session.refresh_token})
        assert refreshed.status == 401
    # The link worked once.
    again = await api.post("/api/v1/auth/password-reset", json={**body, "new_password": "yet another passphrase"})
    assert again.status == 401 and (await problem(again))["code"] == "unauthorized"
    assert (await api.post("/api/v1/auth/login", json={"email": ALICE, "password": PASSWORD})).status == 401
    await login(api, ALICE, NEW_PASSWORD)
    assert [e["target_id"] for e in await _audit(api, admin, "password_reset.requested")] == [alice.id]
    assert [e["target_id"] for e in await _audit(api, admin, "password.reset")] == [alice.id]


async def test_an_unknown_or_disabled_account_gets_the_same_answer_and_no_mail(api, inbox):
    admin = await signed_up(api, "admin@example.com", "admin")
    bob = await create_user(api, "bob@example.com")
    await api.patch(f"/api/v1/users/{bob['id']}", json={"disabled": True}, headers=admin.headers)
    await create_user(api, ALICE)

    answers = [await _request_reset(api, email) for email in (ALICE, "nobody@example.com", "bob@example.com")]
    assert {(a.status, a.content_type, await a.read()) for a in answers} == {(202, "application/octet-stream", b"")}
    await _settled(api)
    assert [m["To"] for m in inbox.messages] == [ALICE]
    assert len(await _audit(api, admin, "password_reset.requested")) == 1


async def test_an_expired_link_and_a_wrong_token_are_refused_and_change_nothing(api, inbox):
    await create_user(api, ALICE)
    assert (await _request_reset(api, ALICE)).status == 202
    await _settled(api)
    token = inbox.token(inbox.to(ALICE)[0])

    wrong = await api.post("/api/v1/auth/password-reset", json={"reset_token": token[:-3] + "abc",
                                                                "new_password": NEW_PASSWORD})
    assert wrong.status == 401
    # The right link, once it is past its time, is refused too.
    await api.app[DB].execute("UPDATE password_resets SET expires_at = ? WHERE token_hash IS NOT NULL",
                              "2000-01-01T00:00:00.000000Z")
    expired = await api.post("/api/v1/auth/password-reset", json={"reset_token": token, "new_password": NEW_PASSWORD})
    assert expired.status == 401 and (await problem(expired))["code"] == "unauthorized"
    await login(api, ALICE, PASSWORD)  # her password is as it was


async def test_a_password_set_by_one_link_spends_the_other_links(api, inbox):
    await create_user(api, ALICE)
    for _ in range(2):
        await _request_reset(api, ALICE)
    await _settled(api)
    older, newer = (inbox.token(m) for m in inbox.to(ALICE))
    assert (await api.post("/api/v1/auth/password-reset", json={"reset_token": newer,
                                                                "new_password": NEW_PASSWORD})).status == 204
    stale = await api.post("/api/v1/auth/password-reset", json={"reset_token": older, "new_password": "stolen passphrase"})
    assert stale.status == 401
    await login(api, ALICE, NEW_PASSWORD)


async def test_mail_requests_are_limited_per_account_and_per_address_alike_for_unknown_accounts(api, inbox):
    await create_user(api, ALICE)
    for email in (ALICE, "nobody@example.com"):
        for _ in range(3):
            assert (await _request_reset(api, email)).status == 202
        refused = await _request_reset(api, email)
        assert refused.status == 429 and int(refused.headers["Retry-After"]) > 0
        assert (await problem(refused))["code"] == "rate_limited"
    # Ten from one address across accounts; the eleventh is refused, whatever the account.
    answers = [(await _request_reset(api, f"user{i}@example.com")).status for i in range(5)]
    assert answers == [202, 202, 202, 202, 429]  # 6 counted above from this address (refusals count nothing)
    await _settled(api)
    assert len(inbox.to(ALICE)) == 3


async def test_a_verification_link_marks_the_email_verified_once(api, inbox):
    registered = await api.post("/api/v1/auth/register", json={"email": "carol@example.com", "password": PASSWORD})
    assert registered.status == 201 and (await registered.json())["email_verified"] is False
    await _settled(api)
    (mail,) = inbox.to("carol@example.com")
    assert inbox.link(mail).startswith(f"{PUBLIC_URL}/ui/verify-email#token=bev_")
    token = inbox.token(mail)

    wrong = await api.post("/api/v1/auth/verify-email", json={"token": token[:-2] + "xy"})
    assert wrong.status == 401
    assert (await api.post("/api/v1/auth/verify-email", json={"token": token})).status == 204
    carol = await login(api, "carol@example.com")
    assert carol.user["email_verified"] is True
    reused = await api.post("/api/v1/auth/verify-email", json={"token": token})
    assert reused.status == 401 and (await problem(reused))["code"] == "unauthorized"
    # Verified already: nothing to send.
    again = await api.post("/api/v1/auth/verify-email/request", headers=carol.headers)
    assert again.status == 409


async def test_a_signed_in_user_asks_for_a_verification_link_and_an_expired_one_is_refused(api, inbox):
    alice = await signed_up(api, ALICE)
    for _ in range(2):
        assert (await api.post("/api/v1/auth/verify-email/request", headers=alice.headers)).status == 202
    await _settled(api)
    first, second = (inbox.token(m) for m in inbox.to(ALICE))
    await api.app[DB].execute("UPDATE email_verifications SET expires_at = ? WHERE token_hash IS NOT NULL",
                              "2000-01-01T00:00:00.000000Z")
    assert (await api.post("/api/v1/auth/verify-email", json={"token": first})).status == 401
    assert (await (await api.get("/api/v1/users/me", headers=alice.headers)).json())["email_verified"] is False
    assert (await api.post("/api/v1/auth/verify-email/request", headers=alice.headers)).status == 202
    await _settled(api)
    assert (await api.post("/api/v1/auth/verify-email", json={"token": inbox.token(inbox.to(ALICE)[-1])})).status == 204
    assert (await (await api.get("/api/v1/users/me", headers=alice.headers)).json())["email_verified"] is True
    assert second != first


async def test_no_token_reaches_the_daemons_log(api, inbox, caplog):
    await create_user(api, ALICE)
    with caplog.at_level(logging.DEBUG):
        await _request_reset(api, ALICE)
        await _settled(api)
        token = inbox.token(inbox.to(ALICE)[0])
        await api.post("/api/v1/auth/password-reset", json={"reset_token": token, "new_password": NEW_PASSWORD})
    ours = [r for r in caplog.records if not r.name.startswith("mail.log")]  # mail.log: the test's SMTP server
    assert any(r.name == "bastion.access" for r in ours)
    for record in ours:
        assert token not in record.getMessage() and token not in str(record.__dict__)


async def test_an_smtp_server_that_is_down_costs_the_request_nothing(aiohttp_client, backend_settings, caplog):
    settings = dataclasses.replace(backend_settings, smtp_url="smtp://127.0.0.1:9", public_url=PUBLIC_URL)
    api = await aiohttp_client(create_app(settings))
    await create_user(api, ALICE)
    assert (await _request_reset(api, ALICE)).status == 202
    with caplog.at_level(logging.WARNING, logger="bastion.mail"):
        await _settled(api)
    assert [r.getMessage() for r in caplog.records if r.name == "bastion.mail"] == ["could not send a mail"]


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_mail_goes_over_tls_as_the_url_says(aiohttp_client, settings, tmp_path, monkeypatch, tls):
    """smtp+starttls:// and smtps:// against a server that requires each; the server's certificate is checked
    (here against the test's own CA, through SSL_CERT_FILE)."""
    certificate = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with smtp_server(tls, certificate) as inbox:
        api = await aiohttp_client(create_app(dataclasses.replace(settings, smtp_url=inbox.url, public_url=PUBLIC_URL)))
        await create_user(api, ALICE)
        assert (await _request_reset(api, ALICE)).status == 202
        await _settled(api)
        assert [m["To"] for m in inbox.messages] == [ALICE]


async def test_a_url_that_requires_tls_sends_nothing_to_a_server_without_it_or_with_an_unknown_certificate(
        aiohttp_client, settings, tmp_path, caplog):
    """smtp+starttls:// never falls back to plain text, and smtps:// does not trust a certificate no CA signed."""
    with smtp_server() as plain:
        starttls_url = plain.url.replace("smtp://", "smtp+starttls://")
        with smtp_server("implicit", self_signed(tmp_path)) as untrusted:
            for first, (url, inbox) in enumerate(((starttls_url, plain), (untrusted.url, untrusted))):
                api = await aiohttp_client(create_app(dataclasses.replace(settings, smtp_url=url, public_url=PUBLIC_URL)))
                if first == 0:
                    await create_user(api, ALICE)  # one database for both apps
                with caplog.at_level(logging.WARNING, logger="bastion.mail"):
                    assert (await _request_reset(api, ALICE)).status == 202
                    await _settled(api)
                assert inbox.messages == []
                await api.close()
    assert [r.getMessage() for r in caplog.records if r.name == "bastion.mail"] == ["could not send a mail"] * 2


async def test_without_smtp_the_mail_routes_answer_404(aiohttp_client, backend_settings):
    api = await aiohttp_client(create_app(backend_settings))
    alice = await signed_up(api, ALICE)
    for response in (await _request_reset(api, ALICE),
                     await api.post("/api/v1/auth/verify-email/request", headers=alice.headers)):
        assert response.status == 404 and "BASTION_SMTP_URL" in (await problem(response))["detail"]


def test_mail_needs_the_public_url_for_its_links():
    with pytest.raises(SettingsError, match="BASTION_PUBLIC_URL"):
        Settings.from_env({"BASTION_SMTP_URL": "smtp://127.0.0.1:8025"})
    with pytest.raises(SettingsError, match="BASTION_SMTP_URL"):
        Settings.from_env({"BASTION_SMTP_URL": "http://mail.example.com", "BASTION_PUBLIC_URL": PUBLIC_URL})
    settings = Settings.from_env({"BASTION_SMTP_URL": "smtps://bastion:s3cret@mail.example.com",
                                  "BASTION_PUBLIC_URL": PUBLIC_URL})
    assert "s3cret" not in repr(settings)
