-- Passkeys (WebAuthn; daemon/services/passkeys.py): a second factor, and a sign-in without a password.
-- `credential_id` is the authenticator's id for the credential (base64url), unique across all users: it is
-- how an assertion names its key. `sign_count` is the authenticator's signature counter (a uint32, hence
-- BIGINT): a counter that does not go up means a cloned key, and the assertion is refused.
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    public_key BLOB NOT NULL,
    sign_count BIGINT NOT NULL DEFAULT 0,
    name TEXT NOT NULL,
    aaguid TEXT NOT NULL,
    transports TEXT NOT NULL DEFAULT '',
    backed_up BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TEXT NOT NULL,
    last_used_at TEXT
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- A WebAuthn challenge the server handed out: only its SHA-256 is kept, bound to the browser it was given
-- to (the SHA-256 of that browser's web-session cookie secret) and, for a registration or a second factor,
-- to its user. Single use (spent_at) and short-lived (expires_at).
CREATE TABLE webauthn_challenges (
    challenge_hash TEXT PRIMARY KEY,
    purpose TEXT NOT NULL CHECK (purpose IN ('register', 'authenticate')),
    browser TEXT NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    spent_at TEXT
);
CREATE INDEX webauthn_challenges_expires ON webauthn_challenges (expires_at);
