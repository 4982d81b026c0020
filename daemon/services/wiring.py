"""Builds the services from open stores: one place, used by the daemon and by `bastiond create-admin`."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.services.audit import Audit
from daemon.services.auth import Auth
from daemon.services.guesses import Guesses
from daemon.services.device import DeviceLogins
from daemon.services.mail import Mail
from daemon.services.mfa import Mfa, SecretSealer
from daemon.services.oidc import Oidc, build_oidc
from daemon.services.passkeys import Passkeys
from daemon.services.passwords import Passwords
from daemon.services.sessions import Sessions
from daemon.services.tokens import Tokens, load_keys
from daemon.services.user_cache import UserCache
from daemon.services.users import Users
from daemon.services.web_sessions import WebSessions
from daemon.settings import Settings
from daemon.stores.cache import Cache
from daemon.stores.events import EventBus
from daemon.stores.secrets import SecretStore
from daemon.stores.sql import Database
from daemon.stores.sql.accounts import Accounts
from daemon.stores.sql.web_sessions import WebSessionRows
from daemon.stores.sql.device import DeviceRows
from daemon.stores.sql.mail import MailRows
from daemon.stores.sql.mfa import MfaRows
from daemon.stores.smtp import SmtpMailer
from daemon.stores.sql.passkeys import PasskeyRows


@dataclass
class AccountServices:
    auth: Auth
    users: Users
    audit: Audit
    sessions: Sessions
    user_cache: UserCache
    passwords: Passwords
    web_sessions: WebSessions
    mfa: Mfa
    device: DeviceLogins
    oidc: Oidc | None  # single sign-on, when configured
    mail: Mail
    passkeys: Passkeys | None  # when BASTION_WEBAUTHN_ORIGINS names the web view's origins

    def close(self) -> None:
        self.passwords.close()


async def build_account_services(
    settings: Settings, db: Database, cache: Cache, events: EventBus, secrets: SecretStore
) -> AccountServices:
    accounts = Accounts(db)
    passwords = Passwords(settings.login_concurrency, settings.login_queue)
    tokens = Tokens(
        secrets, await load_keys(secrets), settings.jwt_issuer, settings.jwt_audience, settings.access_token_ttl_s
    )
    audit = Audit(accounts, events)
    sessions = Sessions(accounts, cache, events, settings.access_token_ttl_s)
    user_cache = UserCache(accounts, events, enabled=not db.replicated)
    sealer = await SecretSealer.load(secrets)
    users = Users(accounts, passwords, sessions, audit, user_cache, sealer)
    guesses = Guesses(cache)
    mfa = Mfa(MfaRows(db), accounts, passwords, sealer, guesses, audit, user_cache, settings.mfa_required_roles)
    auth = Auth(
        accounts, passwords, tokens, sessions, user_cache, audit, events, guesses,
        settings.refresh_token_ttl_s, settings.refresh_reuse_grace_s, mfa,
    )
    # A web-view login is a login of `auth`: its browser session wraps an auth session.
    web_sessions = WebSessions(WebSessionRows(db), auth, settings.refresh_token_ttl_s)
    return AccountServices(auth=auth, users=users, audit=audit, sessions=sessions, user_cache=user_cache,
                           passwords=passwords, web_sessions=web_sessions, mfa=mfa,
                           device=DeviceLogins(DeviceRows(db), accounts, auth, audit),
                           oidc=build_oidc(settings, accounts, users, auth, audit),
                           mail=Mail(SmtpMailer.from_url(settings.smtp_url, settings.mail_from) if settings.smtp_url
                                     else None, settings.public_url, MailRows(db), accounts, users, user_cache,
                                     guesses, audit),
                           passkeys=Passkeys(PasskeyRows(db), accounts, mfa, auth, audit, user_cache, settings.rp_id,
                                             settings.webauthn_origins) if settings.passkeys else None)
