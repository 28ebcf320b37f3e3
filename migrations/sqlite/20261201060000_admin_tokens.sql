-- Admin tokens for the provisioning API (README "Provisioning API"): shown
-- once at creation, stored only as the SHA-256 of their random secret.
CREATE TABLE admin_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
