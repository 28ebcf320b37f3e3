-- Machine clients (client_credentials), enterprise identity providers trusted
-- per org (identity assertion grants, ID-JAG) and single-use assertion ids
-- (issue 16).

-- A service client of one org: its tokens carry `sub` = `id`, the org, and
-- scopes capped by `role`. It authenticates with a secret (stored hashed) or
-- with private_key_jwt against `jwks` (a JWKS document) or `jwks_uri`.
CREATE TABLE service_clients (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'member', 'admin')),
    scope TEXT NOT NULL,
    auth_method TEXT NOT NULL CHECK (auth_method IN ('client_secret_basic', 'private_key_jwt')),
    secret_hash TEXT,
    jwks TEXT,
    jwks_uri TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX service_clients_org ON service_clients(org_id);
CREATE INDEX service_clients_revoked ON service_clients(revoked_at);

-- An enterprise identity provider an org trusts to assert its users
-- (`issuer` is the ID-JAG `iss`); `algorithms` is a space-separated list of
-- asymmetric JWS algorithms.
CREATE TABLE enterprise_idps (
    org_id UUID NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    issuer TEXT NOT NULL,
    jwks_uri TEXT NOT NULL,
    algorithms TEXT NOT NULL,
    link_by_email BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, issuer)
);
CREATE INDEX enterprise_idps_issuer ON enterprise_idps(issuer);

-- `jti`s of accepted assertions (ID-JAGs, client assertions), kept until the
-- assertion expires: the primary key makes a replay fail on every instance.
CREATE TABLE used_assertions (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX used_assertions_expires ON used_assertions(expires_at);
