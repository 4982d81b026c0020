-- Device login (RFC 8628; daemon/services/device.py). Only the SHA-256 of the device code is kept; the user
-- code is short, lives ten minutes and grants nothing by itself (a signed-in user must approve it), so it is
-- kept as typed, normalised, to be found. `user_id` is the approver: the session the device gets is theirs.
CREATE TABLE device_grants (
    device_code_hash TEXT PRIMARY KEY,
    user_code TEXT NOT NULL UNIQUE,
    client_name TEXT NOT NULL,
    ip TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    interval_s INTEGER NOT NULL,
    polled_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'spent')),
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    session_mfa BOOLEAN NOT NULL DEFAULT FALSE,
    decided_at TEXT
);
CREATE INDEX device_grants_expires ON device_grants (expires_at);
