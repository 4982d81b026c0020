-- The web view's browser sessions (daemon/services/web_sessions.py). The browser's cookie holds a random
-- secret; this table keeps only its SHA-256, and the session's access and refresh tokens sealed with a
-- key derived from that secret, so whoever reads the table still cannot act as anyone.

CREATE TABLE web_sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sealed_tokens BLOB NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
