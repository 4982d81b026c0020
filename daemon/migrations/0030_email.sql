-- Email verification and self-service password reset by mail (daemon/services/mail.py).
-- users.email_verified: the owner opened a verification link sent to this address.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;

-- A verification link sent by mail: only the token's SHA-256 is kept, with the address it was sent to (a link
-- verifies that address, not whatever the account's is when it is opened). Single use, short-lived.
-- (Reset links are rows of password_resets, like the ones an administrator issues.)
CREATE TABLE email_verifications (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    spent_at TEXT
);
CREATE INDEX email_verifications_user ON email_verifications (user_id);
