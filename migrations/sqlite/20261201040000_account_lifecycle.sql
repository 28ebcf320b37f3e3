-- Account lifecycle (README "Accounts"): org names unique case-insensitively,
-- one-time password reset links, and unlocks of throttled sign-ins.

-- The org name's canonical form (NFKC, then full lowercase), computed in Rust
-- like users.email_canonical and backfilled by Store::migrate. Unique when
-- set; an org whose name clashed with an older one before this migration
-- keeps NULL, and the console tells such orgs apart by id.
ALTER TABLE orgs ADD COLUMN name_canonical TEXT;
CREATE UNIQUE INDEX orgs_name_canonical ON orgs(name_canonical);

-- A one-time link that lets a user choose a new password: random, stored
-- only as its SHA-256, valid until expires_at and for one use.
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX password_resets_user ON password_resets(user_id);

-- Sign-in throttling counters live in each instance's memory; an unlock made
-- by an admin (CLI or console, any instance) is written here and applied by
-- every instance at the account's next held-back attempt.
CREATE TABLE sign_in_unlocks (
    account TEXT PRIMARY KEY,
    unlocked_at INTEGER NOT NULL
);
