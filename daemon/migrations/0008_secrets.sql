-- Secrets every replica shares when there is PostgreSQL and no Vault (daemon/stores/secrets/database.py):
-- the token signing keys. `value` is the JSON blob, or with BASTION_SECRET_KEY set, "aes256gcm:" and the
-- base64 of a nonce and the blob sealed under that key (the name is bound in as associated data).
-- Numbered 0008 so that the migrations other branches are adding now (0004 to 0007) keep their numbers.

CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
