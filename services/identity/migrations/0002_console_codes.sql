-- One-time console sign-in codes (stored hashed; each works once, briefly).
CREATE TABLE console_codes (
    code_hash    bytea PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);
