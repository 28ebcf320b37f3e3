-- Arguments and results of gateway calls to upstreams with log_payloads
-- (issue 14): redacted and capped before they are written. One row per
-- audited call (tool_calls.id); the audit row is written behind, so there is
-- no foreign key.
CREATE TABLE tool_call_payloads (
    call_id UUID PRIMARY KEY,
    org_id UUID NOT NULL,
    at BIGINT NOT NULL,
    arguments TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX tool_call_payloads_org_at ON tool_call_payloads(org_id, at);
