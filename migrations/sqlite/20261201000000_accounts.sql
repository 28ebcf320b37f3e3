-- Columns and tables shared by sign-in through identity providers (issue 12),
-- enterprise identity assertions (issue 16) and account lifecycle (issue 17).

-- The product's own id for an organization (an IdP claim or the provisioning
-- API names orgs by it). Unique when set.
ALTER TABLE orgs ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX orgs_external_id ON orgs(external_id);

-- Set while an account is disabled: it cannot sign in and its grants and keys
-- are refused.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

-- A user as known to an upstream identity provider: identified by
-- (provider, subject), never by email. `provider` is a configured provider
-- id (sign-in) or an enterprise issuer URL (identity assertions).
CREATE TABLE external_identities (
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email TEXT,
    created_at INTEGER NOT NULL,
    last_login_at INTEGER,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX external_identities_user ON external_identities(user_id);
