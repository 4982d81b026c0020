"""Mail to users: self-service password reset, and email verification (with BASTION_SMTP_URL).

- A request for a reset link answers 202 at once, whatever the email: the request path only counts the
  request (services/guesses.py, MAIL_REQUEST) and queues the job. Looking the account up, making the token and
  talking to the SMTP server happen in the background, so neither the answer nor its timing says whether the
  account exists; an unknown or disabled account gets no mail.
- A link carries a random token (256 bits) in its fragment (`/ui/reset#token=...`): a fragment never reaches a
  server, so the token is in no access log, proxy log or Referer. Only its SHA-256 is stored; it is spent on use
  and lives RESET_TTL (reset) or VERIFY_TTL (verification). A reset link is one of password_resets' tokens, set
  with `POST /auth/password-reset` like an administrator's, which ends every session of the user.
- Sending failures are logged (never the message: it holds the token) and not retried: the person asks again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Protocol

from daemon.clock import iso, now
from daemon.services.audit import Audit
from daemon.services.guesses import EMAIL_TOKEN, MAIL_REQUEST, Guesses
from daemon.services.principal import Principal
from daemon.services.user_cache import UserCache
from daemon.services.users import Users, normalise_email, token_hash
from daemon.stores.sql.accounts import Accounts
from daemon.stores.sql.mail import MailRows
from shared.errors import ApiError, Code

log = logging.getLogger("bastion.mail")

RESET_TTL = timedelta(minutes=30)
VERIFY_TTL = timedelta(hours=24)
VERIFY_PREFIX = "bev_"
# Jobs waiting for the SMTP server; past this, requests are still answered 202 and their mail is dropped
# (logged): a flood must not grow the daemon's memory.
QUEUE_SIZE = 200


class Mailer(Protocol):
    async def send(self, to: str, subject: str, text: str) -> None: ...


Job = Callable[[], Awaitable[None]]


class Mail:
    def __init__(self, mailer: Mailer | None, public_url: str | None, rows: MailRows, accounts: Accounts,
                 users: Users, user_cache: UserCache, guesses: Guesses, audit: Audit) -> None:
        self._mailer = mailer
        self._base = (public_url or "").rstrip("/")
        self._rows = rows
        self._accounts = accounts
        self._users = users
        self._user_cache = user_cache
        self._guesses = guesses
        self._audit = audit
        self._jobs: asyncio.Queue[Job] = asyncio.Queue(QUEUE_SIZE)

    @property
    def configured(self) -> bool:
        return self._mailer is not None

    def _check_configured(self) -> None:
        if self._mailer is None:
            raise ApiError(Code.NOT_FOUND, "mail is not configured on this server (BASTION_SMTP_URL)")

    # -- the requests: counted, queued, answered ------------------------------------------------------

    async def request_reset(self, email: str, ip: str) -> None:
        """A reset link for `email`, if it has an account: the same work here whether or not it has."""
        self._check_configured()
        email = normalise_email(email)
        await self._guesses.reserve(MAIL_REQUEST, account=email, address=ip)
        self._later(lambda: self._send_reset(email, ip))

    async def request_verification(self, principal: Principal, ip: str) -> None:
        """A verification link to the caller's own address."""
        self._check_configured()
        user = await self._user_cache.get(principal.user_id)
        if user is None:
            raise ApiError(Code.UNAUTHORIZED, "the account is deleted or disabled")
        if user.email_verified:
            raise ApiError(Code.CONFLICT, "your email address is already verified")
        await self._guesses.reserve(MAIL_REQUEST, account=user.email, address=ip)
        self._later(lambda: self._send_verification(user.id, ip))

    def welcome(self, user_id: str, ip: str | None) -> None:
        """A verification link for a new account (open registration), when mail is configured."""
        if self._mailer is not None:
            self._later(lambda: self._send_verification(user_id, ip))

    def _later(self, job: Job) -> None:
        try:
            self._jobs.put_nowait(job)
        except asyncio.QueueFull:
            log.warning("the mail queue is full; a message was dropped", extra={"queued": QUEUE_SIZE})

    # -- the link's use -------------------------------------------------------------------------------

    async def verify(self, token: str, ip: str) -> None:
        guess = await self._guesses.reserve(EMAIL_TOKEN, address=ip)
        user_id = await self._rows.verify(token_hash(token), iso(now()))
        if user_id is None:
            raise ApiError(Code.UNAUTHORIZED, "the verification link is not valid: it is unknown, used or expired")
        await guess.right()
        await self._user_cache.changed("user.updated", user_id)
        await self._audit.record("email.verified", actor_id=user_id, target_id=user_id, ip=ip)

    # -- in the background ----------------------------------------------------------------------------

    async def _send_reset(self, email: str, ip: str) -> None:
        row = await self._accounts.user_with_hash_by_email(email)
        if row is None or row["disabled"]:
            return
        issued = await self._users.new_reset_token(row["id"], RESET_TTL)
        await self._audit.record("password_reset.requested", target_id=row["id"], ip=ip)
        minutes = int(RESET_TTL.total_seconds() // 60)
        await self._mailer.send(row["email"], "Reset your Bastion password", (
            f"Someone (we hope you) asked to reset the password of your Bastion account at {self._base}.\n\n"
            f"To choose a new password, open this link within {minutes} minutes (it works once):\n\n"
            f"{self._base}/ui/reset#token={issued.reset_token}\n\n"
            "A new password logs you out everywhere else. If you did not ask for this, ignore this mail: "
            "your password stays as it is.\n"))

    async def _send_verification(self, user_id: str, ip: str | None) -> None:
        user = await self._user_cache.get(user_id)
        if user is None or user.disabled or user.email_verified:
            return
        token = VERIFY_PREFIX + secrets.token_urlsafe(32)
        moment = now()
        await self._rows.insert_verification(token_hash(token), user.id, user.email, iso(moment),
                                             iso(moment + VERIFY_TTL))
        await self._audit.record("email.verification_sent", target_id=user.id, ip=ip)
        hours = int(VERIFY_TTL.total_seconds() // 3600)
        await self._mailer.send(user.email, "Verify your email address for Bastion", (
            f"To confirm that {user.email} is yours for your Bastion account at {self._base}, open this link "
            f"within {hours} hours (it works once):\n\n{self._base}/ui/verify-email#token={token}\n\n"
            "If you have no Bastion account there, ignore this mail.\n"))

    async def run(self) -> None:
        """Send what was queued, one at a time, for as long as the daemon runs (a task of the app's)."""
        while True:
            job = await self._jobs.get()
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an SMTP server that refuses or is down: logged, the next job goes on
                log.warning("could not send a mail", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
            finally:
                self._jobs.task_done()

    async def settled(self) -> None:
        """Once every job queued so far is done (tests wait for it: nothing is sent on the request path)."""
        await self._jobs.join()
