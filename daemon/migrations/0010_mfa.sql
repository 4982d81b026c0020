-- The TOTP second factor (daemon/services/mfa.py).
-- users.mfa_enabled: a login of this user stops at `mfa_required` until a code is given.
-- sessions.mfa: the session was opened with a second factor (approving a device login needs one).
ALTER TABLE users ADD COLUMN mfa_enabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE sessions ADD COLUMN mfa BOOLEAN NOT NULL DEFAULT FALSE;

-- The shared secret is sealed (AES-GCM) with a key from the secrets store, bound to its user's id, so the
-- database alone does not give anyone the codes. `last_step` is the RFC 6238 time step of the last code
-- accepted: a code of that step or an earlier one is never accepted again. A row with no confirmed_at is
-- an enrolment that has not seen its first code yet.
CREATE TABLE totp_factors (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret BLOB NOT NULL,
    created_at TEXT NOT NULL,
    confirmed_at TEXT,
    last_step INTEGER NOT NULL DEFAULT 0
);

-- Only the SHA-256 of each recovery code (80 random bits, keyed with the user's id) is kept.
CREATE TABLE recovery_codes (
    code_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    spent_at TEXT
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- An `mfa_token`: a password that was right, waiting for its second factor ('verify') or for the user to
-- set one up ('enrol'). Single use; dead after five codes tried or five minutes.
CREATE TABLE mfa_challenges (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('verify', 'enrol')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    spent_at TEXT
);
