-- Element definitions, the connections this service knows (from connection events),
-- deployments and their steps, and the instances they keep up to date.
CREATE TABLE app_event_types (
    workspace_id       uuid NOT NULL,
    key                text NOT NULL,
    integration_key    text NOT NULL,
    name               text NOT NULL,
    spec               jsonb NOT NULL,
    static_secret_sealed text,
    revision           integer NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, key)
);

CREATE TABLE data_sources (
    workspace_id    uuid NOT NULL,
    key             text NOT NULL,
    integration_key text NOT NULL,
    name            text NOT NULL,
    spec            jsonb NOT NULL,
    revision        integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, key)
);

CREATE TABLE known_connections (
    workspace_id    uuid NOT NULL,
    id              uuid NOT NULL,
    customer_id     text NOT NULL,
    integration_key text NOT NULL,
    state           text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX known_connections_integration_idx ON known_connections (workspace_id, integration_key);

CREATE TABLE deployments (
    id              uuid PRIMARY KEY,
    workspace_id    uuid NOT NULL,
    connection_id   uuid NOT NULL,
    customer_id     text NOT NULL,
    integration_key text NOT NULL,
    reason          text NOT NULL,
    status          text NOT NULL,
    steps_total     integer NOT NULL DEFAULT 0,
    steps_done      integer NOT NULL DEFAULT 0,
    superseded_by   uuid,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at      timestamptz,
    finished_at     timestamptz
);
CREATE INDEX deployments_connection_idx ON deployments (workspace_id, connection_id, created_at DESC);
CREATE INDEX deployments_integration_idx ON deployments (workspace_id, integration_key, created_at DESC);

CREATE TABLE deployment_steps (
    id              uuid PRIMARY KEY,
    deployment_id   uuid NOT NULL REFERENCES deployments (id),
    workspace_id    uuid NOT NULL,
    ord             integer NOT NULL,
    kind            text NOT NULL,
    element_key     text NOT NULL,
    status          text NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    error           text,
    lease_owner     text,
    lease_until     timestamptz,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deployment_steps_deployment_idx ON deployment_steps (deployment_id, ord);
CREATE INDEX deployment_steps_ready_idx ON deployment_steps (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deployment_steps_leased_idx ON deployment_steps (lease_until) WHERE status = 'running';

CREATE TABLE subscriptions (
    id                 uuid PRIMARY KEY,
    workspace_id       uuid NOT NULL,
    connection_id      uuid NOT NULL,
    customer_id        text NOT NULL,
    integration_key    text NOT NULL,
    app_event_type_key text NOT NULL,
    status             text NOT NULL,
    external_id        text,
    token_hash         bytea NOT NULL UNIQUE,
    token_sealed       text NOT NULL,
    secret_sealed      text,
    revision           integer NOT NULL,
    last_error         text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX subscriptions_live_idx ON subscriptions (workspace_id, connection_id, app_event_type_key)
    WHERE status <> 'unsubscribed';

CREATE TABLE data_source_instances (
    id              uuid PRIMARY KEY,
    workspace_id    uuid NOT NULL,
    connection_id   uuid NOT NULL,
    customer_id     text NOT NULL,
    data_source_key text NOT NULL,
    status          text NOT NULL,
    fields_schema   jsonb,
    state           jsonb,
    last_error      text,
    revision        integer NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, connection_id, data_source_key)
);

CREATE TABLE webhook_deliveries (
    subscription_id uuid NOT NULL,
    delivery_id     text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription_id, delivery_id)
);
