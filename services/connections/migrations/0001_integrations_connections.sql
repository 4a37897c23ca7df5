-- Integrations (auth specs; the client secret sealed), connect sessions and OAuth state,
-- connections with sealed credentials and their refresh schedule.
CREATE TABLE integrations (
    workspace_id         uuid NOT NULL,
    key                  text NOT NULL,
    name                 text NOT NULL,
    template             text,
    auth                 jsonb NOT NULL,
    client_secret_sealed text,
    api                  jsonb,
    test                 jsonb,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, key)
);

CREATE TABLE connect_sessions (
    id                     uuid PRIMARY KEY,
    workspace_id           uuid NOT NULL,
    token_hash             bytea NOT NULL UNIQUE,
    customer_id            text NOT NULL,
    integration_key        text NOT NULL,
    connection_id          uuid,
    redirect_uri           text,
    allow_multiple         boolean NOT NULL DEFAULT false,
    expires_at             timestamptz NOT NULL,
    opened_at              timestamptz,
    finished_at            timestamptz,
    state_hash             bytea UNIQUE,
    code_verifier_sealed   text,
    created_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX connect_sessions_expiry_idx ON connect_sessions (expires_at);

CREATE TABLE connections (
    id                 uuid PRIMARY KEY,
    workspace_id       uuid NOT NULL,
    customer_id        text NOT NULL,
    integration_key    text NOT NULL,
    name               text NOT NULL,
    state              text NOT NULL CHECK (state IN ('connected', 'disconnected', 'error', 'archived')),
    credentials_sealed text NOT NULL,
    account            jsonb,
    expires_at         timestamptz,
    refresh_due_at     timestamptz,
    check_due_at       timestamptz,
    version            integer NOT NULL DEFAULT 1,
    refresh_attempts   integer NOT NULL DEFAULT 0,
    last_refresh_at    timestamptz,
    last_error         text,
    cooldown_until     timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX connections_customer_idx ON connections (workspace_id, customer_id, integration_key);
CREATE INDEX connections_list_idx ON connections (workspace_id, id);
CREATE INDEX connections_refresh_due_idx ON connections (refresh_due_at) WHERE state = 'connected';
CREATE INDEX connections_check_due_idx ON connections (check_due_at) WHERE state = 'connected';
