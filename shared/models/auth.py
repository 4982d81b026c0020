"""Logins, tokens, sessions and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, EmailStr, Field, StrictBool

from shared.models import Strict, Text, Timestamp
from shared.models.users import DisplayName, Password, User

Scope = Literal["read", "write", "admin"]


class Register(Strict):
    email: EmailStr
    password: Password
    display_name: DisplayName = ""


class Login(Strict):
    # Any string up to the limits: a login never says which part was wrong, so no format checks here.
    email: Text = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    user: User


class Refresh(Strict):
    refresh_token: str = Field(min_length=1, max_length=200)


class Session(BaseModel):
    id: str
    created_at: datetime
    last_used_at: datetime
    user_agent: str
    ip: str
    current: bool


class ChangePassword(Strict):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: Password


class ResetPassword(Strict):
    reset_token: str = Field(min_length=1, max_length=200)
    new_password: Password


class CreateApiKey(Strict):
    name: Text = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1)
    expires_at: Timestamp | None = None


class ApiKey(BaseModel):
    id: str
    name: str
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None


class CreatedApiKey(ApiKey):
    key: str  # shown this once


class Jwk(BaseModel):
    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class Jwks(BaseModel):
    keys: list[Jwk]


# -- second factors (TOTP) ------------------------------------------------------------------------------

MfaToken = Annotated[str, Field(min_length=1, max_length=200)]
# A six-digit TOTP code, or a recovery code (its hyphens and spaces are ignored).
MfaCode = Annotated[str, Field(min_length=1, max_length=64)]


class StartTotp(Strict):
    """With a bearer token: the password. Without one: the `mfa_token` of an `mfa_enrolment_required`."""

    password: str | None = Field(None, min_length=1, max_length=1024)
    mfa_token: MfaToken | None = None


class TotpSecret(BaseModel):
    secret: str
    otpauth_uri: str


class ConfirmTotp(Strict):
    code: MfaCode
    mfa_token: MfaToken | None = None


class TotpConfirmed(BaseModel):
    recovery_codes: list[str]  # shown this once
    # When confirmed with an `mfa_token` (enrolment at login): the session that login opens.
    session: TokenPair | None = None


class DisableTotp(Strict):
    password: str = Field(min_length=1, max_length=1024)
    code: MfaCode


class VerifyMfa(Strict):
    mfa_token: MfaToken
    code: MfaCode


# -- device login (RFC 8628) ----------------------------------------------------------------------------


class StartDeviceLogin(Strict):
    client_name: Text = Field("", max_length=100)  # shown to whoever approves: "bastion CLI on build-01"


class DeviceAuthorization(BaseModel):
    device_code: str  # the device keeps this to poll with; never shown
    user_code: str  # the person types or scans this where they are signed in
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


class DeviceToken(Strict):
    device_code: str = Field(min_length=1, max_length=200)


class DeviceApproval(Strict):
    user_code: Text = Field(min_length=1, max_length=20)
    approve: StrictBool


class DeviceRequest(BaseModel):
    """A device login waiting for approval, as the approver sees it."""

    user_code: str
    client_name: str
    ip: str
    created_at: datetime
    expires_at: datetime


class RequestPasswordReset(Strict):
    # Any string up to the limit, as at login: the answer is the same 202 whatever it is.
    email: Text = Field(min_length=1, max_length=320)


class VerifyEmail(Strict):
    token: str = Field(min_length=1, max_length=200)
