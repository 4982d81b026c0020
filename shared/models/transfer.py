"""Moving accounts between daemons: `bastiond export users` writes these records, one JSON object a line,
and `bastiond import` sends them in batches to POST /api/v1/admin/import/users."""

from __future__ import annotations

from typing import Annotated

from pydantic import EmailStr, Field, StrictBool

from shared.models import Strict, Timestamp
from shared.models.users import DisplayName, Role

MAX_IMPORT = 1000
# Only what this daemon itself verifies: an argon2id PHC string (daemon/services/passwords.py).
PasswordHash = Annotated[str, Field(pattern=r"^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$",
                                    max_length=512)]
UserId = Annotated[str, Field(pattern=r"^usr_[a-z0-9]{1,64}$")]


class ExportedUser(Strict):
    id: UserId
    email: EmailStr
    display_name: DisplayName = ""
    role: Role = "user"
    disabled: StrictBool = False
    password_hash: PasswordHash
    created_at: Timestamp | None = None


class ImportUsers(Strict):
    users: list[ExportedUser] = Field(min_length=1, max_length=MAX_IMPORT)


class ImportResult(Strict):
    created: int  # accounts added, each raising user.created
    skipped: int  # accounts whose id or email this daemon already has: left as they are
