"""Guess limits: every secret a caller can guess is counted BEFORE it is checked. The one place for it.

A limit that is checked before a guess and counted after it can be raced: forty logins sent at once all
passed the check before the first failure was counted, and guess 34 of 40 won (issue 21). So a guess
first reserves one unit on every counter it falls under, as one atomic step of the cache (in-process,
or Redis shared by every replica: `Cache.hit_all`, all or nothing); only a guess that got its
reservation is checked at all. A right guess gives its reservation back (`Reservation.right`) and
clears the counters its policy forgives; a wrong guess keeps it, and so does one whose check stopped
half-way, unless the check refused to run at all (`Reservation.check`).
So at most `limit` guesses are ever checked within a counter's period, however many arrive at once.

Used for the password at login, the current password of a password change, reset tokens, and every
other guessable secret to come (a TOTP code is one more policy here, not a second mechanism):

    TOTP = GuessPolicy("totp", "too many wrong codes; try again later",
                       (GuessLimit(("account",), 5, 15 * 60, forgiven=True),))

    reservation = await guesses.reserve(TOTP, account=user_id)  # 429 with Retry-After when spent
    if not totp.verify(code):
        raise ApiError(Code.INVALID_CREDENTIALS, "...")          # the reservation stays counted
    await reservation.right()

A check that may refuse to run (argon2's bounded pool answers 503) is awaited through
`reservation.check(...)`, which gives the reservation back in that case.

Counters are keyed by a hash of what they count (an email, an address), so the cache holds no email.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from dataclasses import dataclass

from daemon.stores.cache import Cache, RateDecision
from shared.errors import ApiError, Code


@dataclass(frozen=True)
class GuessLimit:
    """At most `limit` guesses per `period_s` for each value of the facts named in `per`."""

    per: tuple[str, ...]  # e.g. ("account", "address"): one counter per account and address
    limit: int
    period_s: float
    # A right guess clears this counter: the failures it held were the owner's own typos. Left False
    # where clearing would hand an attacker a fresh budget each time the owner logs in.
    forgiven: bool = False


@dataclass(frozen=True)
class GuessPolicy:
    name: str  # keeps each secret's counters apart: "login", "password-change", ...
    refusal: str  # what a caller over a limit is told (429)
    limits: tuple[GuessLimit, ...]


# Locked per account and address, so that an attacker elsewhere cannot lock the owner out by failing
# their logins; with a slower limit per account from every address, for guesses spread over many; and
# a limit per address across accounts, for one address trying many accounts.
LOGIN = GuessPolicy("login", "too many failed logins; try again later", (
    GuessLimit(("account", "address"), 10, 15 * 60, forgiven=True),
    GuessLimit(("account",), 50, 60 * 60),
    GuessLimit(("address",), 100, 60 * 60),
))
# A stolen access token must not become a password oracle (issue 21).
PASSWORD_CHANGE = GuessPolicy("password-change", "too many wrong current passwords; try again later", (
    GuessLimit(("account",), 5, 15 * 60, forgiven=True),
))
# Reset tokens carry 256 random bits, so guessing one is hopeless; counted all the same, per address,
# so that nobody can spend the server's time trying.
RESET_TOKEN = GuessPolicy("reset-token", "too many invalid reset tokens; try again later", (
    GuessLimit(("address",), 20, 60 * 60),
))

# A request for mail (a reset link, a verification link) is counted like a guess and never given back: per
# account, so that nobody can flood someone's inbox, and per address, so that one client cannot ask for many
# accounts. Counted alike whether or not the account exists, so a 429 tells nothing about it either.
MAIL_REQUEST = GuessPolicy("mail-request", "too many mail requests; try again later", (
    GuessLimit(("account",), 3, 60 * 60),
    GuessLimit(("address",), 10, 60 * 60),
))
# Verification links carry 256 random bits; counted per address as reset tokens are.
EMAIL_TOKEN = GuessPolicy("email-token", "too many invalid verification links; try again later", (
    GuessLimit(("address",), 20, 60 * 60),
))


class Reservation:
    """One guess, counted. `right()` when it was right; otherwise nothing: it stays counted."""

    def __init__(self, cache: Cache, checks: list[tuple[str, int, float]], forgiven: list[str]) -> None:
        self._cache = cache
        self._checks = checks
        self._forgiven = forgiven

    async def check(self, verdict: Awaitable[bool]) -> bool:
        """Await the check of this guess. One that refuses with an ApiError never judged the guess (no
        room to hash a password: 503), so the reservation goes back before the error goes on; anything
        else, a cancellation included, leaves it counted."""
        try:
            return await verdict
        except ApiError:
            await self._cache.hit_all(self._checks, cost=-1)
            raise

    async def right(self) -> None:
        for key in self._forgiven:
            await self._cache.reset(key)
        rest = [check for check in self._checks if check[0] not in self._forgiven]
        if rest:
            await self._cache.hit_all(rest, cost=-1)


class Guesses:
    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    async def reserve(self, policy: GuessPolicy, **facts: str) -> Reservation:
        """Count one guess under every limit of `policy`, before it is checked; ApiError(rate_limited)
        with Retry-After, counting nothing, when any limit is spent. `facts` name what the limits are
        per: account=..., address=..."""
        checks, forgiven = [], []
        for rule in policy.limits:
            values = "\0".join(facts[name] for name in rule.per)
            key = f"guess:{policy.name}:{'+'.join(rule.per)}:{hashlib.sha256(values.encode()).hexdigest()[:32]}"
            checks.append((key, rule.limit, rule.period_s))
            if rule.forgiven:
                forgiven.append(key)
        decisions = await self._cache.hit_all(checks)
        refused = [decision for decision in decisions if not decision.allowed]
        if refused:
            raise ApiError(Code.RATE_LIMITED, policy.refusal,
                           headers={"Retry-After": _longest_wait(refused).retry_after_header})
        return Reservation(self._cache, checks, forgiven)


def _longest_wait(decisions: list[RateDecision]) -> RateDecision:
    return max(decisions, key=lambda decision: decision.retry_after_s)
