"""Moving accounts between daemons: `bastiond export users` writes these records, one JSON object a line,
and `bastiond import` sends them in batches to POST /api/v1/admin/import/users.

An account's second factors move with it: an account that needed a code or a passkey where it was must not
arrive needing only its password. The TOTP secret travels in the clear (the daemon that exports unseals it,
the one that imports seals it with its own key), so the file is as secret as the factors themselves.
Recovery codes travel as the hashes kept of them, which are keyed with the user's id, and the id moves too."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, EmailStr, Field, StrictBool, StrictInt

from shared.models import Strict, Text, Timestamp
from shared.models.users import DisplayName, Role

MAX_IMPORT = 1000
# Only what this daemon itself verifies: an argon2id PHC string (daemon/services/passwords.py).
PasswordHash = Annotated[str, Field(pattern=r"^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$",
                                    max_length=512)]
UserId = Annotated[str, Field(pattern=r"^usr_[a-z0-9]{1,64}$")]
MAX_FACTORS = 50  # passkeys, or recovery codes, of one account (an enrolment makes 10 codes)


class ExportedTotp(Strict):
    """A confirmed TOTP factor (an enrolment never confirmed is not moved)."""

    secret: str = Field(pattern=r"^[A-Z2-7]{16,128}$")  # base32, as the authenticator app holds it
    confirmed_at: Timestamp
    # The last time step used (30 s each since 1970): a code seen there is not taken here either.
    last_step: StrictInt = Field(0, ge=0, le=2**31 - 1)


def _base64url(text: str) -> str:
    if len(text) % 4 == 1:  # no whole number of bytes is written with 4k + 1 characters
        raise ValueError("not base64url: its length is one more than a multiple of 4")
    return text


Base64Url = Annotated[str, AfterValidator(_base64url)]


class ExportedPasskey(Strict):
    id: str = Field(pattern=r"^pk_[a-z0-9]{1,64}$")
    credential_id: Base64Url = Field(pattern=r"^[A-Za-z0-9_-]{2,1400}$")  # as registered
    public_key: Base64Url = Field(pattern=r"^[A-Za-z0-9_-]{2,2800}$")  # the COSE key
    sign_count: StrictInt = Field(0, ge=0, le=2**32 - 1)  # WebAuthn's counter is 32 bits
    name: Text = Field(min_length=1, max_length=64)
    aaguid: str = Field(pattern=r"^[0-9a-f-]{0,36}$")
    transports: str = Field("", pattern=r"^[a-z -]{0,200}$")
    backed_up: StrictBool = False
    created_at: Timestamp
    last_used_at: Timestamp | None = None


class ExportedUser(Strict):
    id: UserId
    email: EmailStr
    display_name: DisplayName = ""
    role: Role = "user"
    disabled: StrictBool = False
    password_hash: PasswordHash
    created_at: Timestamp | None = None
    email_verified: StrictBool = False
    totp: ExportedTotp | None = None
    recovery_codes: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field([], max_length=MAX_FACTORS)
    passkeys: list[ExportedPasskey] = Field([], max_length=MAX_FACTORS)


class ImportUsers(Strict):
    users: list[ExportedUser] = Field(min_length=1, max_length=MAX_IMPORT)


class ImportResult(Strict):
    created: int  # accounts added, each raising user.created
    skipped: int  # accounts whose id or email this daemon already has: left as they are
