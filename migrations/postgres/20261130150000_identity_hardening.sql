-- One canonical form per email (README "Limits and hardening"). The form is
-- computed in Rust (NFKC, then full lowercase) and backfilled by
-- `Store::migrate` right after this file runs, before the index can collide.
ALTER TABLE users ADD COLUMN email_canonical TEXT;
CREATE UNIQUE INDEX users_email_canonical ON users(email_canonical);

-- A wrong code_verifier counts against the code instead of consuming it.
ALTER TABLE auth_codes ADD COLUMN failed_attempts BIGINT NOT NULL DEFAULT 0;

-- Set when a sibling refresh token (same parent) was used first: the family
-- keeps one live branch, and presenting a killed token is reuse.
ALTER TABLE refresh_tokens ADD COLUMN killed_at BIGINT;

-- Random secrets shared by every instance (cookie and CSRF MACs).
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
