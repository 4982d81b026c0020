-- Single sign-on with OpenID Connect (daemon/services/oidc.py).
-- identity_links: a provider's account (its issuer and `sub`, which never change) and the Bastion user it
-- signs in as. The email is the one the provider gave when the link was made, kept for the audit's reader.
CREATE TABLE identity_links (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    last_login_at TEXT,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX identity_links_user ON identity_links (user_id);

-- A sign-in sent to the provider and not yet back. Its state, nonce and PKCE verifier are derived from a
-- random secret that only the browser's pre-login cookie carries; this table keeps the secret's SHA-256,
-- so that each sign-in is finished once, and only before it expires.
CREATE TABLE oidc_flows (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX oidc_flows_expires ON oidc_flows (expires_at);
