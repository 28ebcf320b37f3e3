-- Login hand-off assertions already used (issue 12): a `jti` is accepted
-- once per trusted product, on every instance. Rows are kept until the
-- assertion would have expired anyway.
CREATE TABLE handoff_assertions (
    provider TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (provider, jti)
);
CREATE INDEX handoff_assertions_expiry ON handoff_assertions(expires_at);
