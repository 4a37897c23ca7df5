-- Actions: single operations run through a connection. Definitions with every revision kept,
-- instances on connections (with a JSON Merge Patch customisation over a base revision),
-- and the run log.
CREATE TABLE actions (
    workspace_id    uuid NOT NULL,
    key             text NOT NULL,
    level           text NOT NULL,
    integration_key text,
    customer_id     text,
    definition      jsonb NOT NULL,
    auto_deploy     boolean NOT NULL DEFAULT false,
    revision        integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, key)
);
CREATE INDEX actions_auto_deploy_idx ON actions (workspace_id) WHERE auto_deploy;

CREATE TABLE action_revisions (
    workspace_id uuid NOT NULL,
    action_key   text NOT NULL,
    revision     integer NOT NULL,
    definition   jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, action_key, revision)
);

CREATE TABLE action_instances (
    id              uuid PRIMARY KEY,
    workspace_id    uuid NOT NULL,
    action_key      text NOT NULL,
    connection_id   uuid NOT NULL,
    customer_id     text NOT NULL,
    integration_key text NOT NULL,
    base_revision   integer NOT NULL,
    customization   jsonb NOT NULL DEFAULT '{}'::jsonb,
    enabled         boolean NOT NULL DEFAULT true,
    archived_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, connection_id, action_key)
);
CREATE INDEX action_instances_action_idx ON action_instances (workspace_id, action_key);

-- One row per run. A run with an Idempotency-Key is written (status 'running') before the
-- app is called, so a repeat of the key finds it; the key is unique per connection while
-- it is held (24 h: an older holder's key is released, set NULL, when the key comes again).
-- Input and output are dropped after the retention (output_dropped); the row stays.
CREATE TABLE action_runs (
    id                 uuid PRIMARY KEY,
    workspace_id       uuid NOT NULL,
    action_key         text NOT NULL,
    action_instance_id uuid,
    revision           integer NOT NULL,
    connection_id      uuid NOT NULL,
    customer_id        text NOT NULL,
    integration_key    text NOT NULL,
    status             text NOT NULL,
    input              jsonb,
    output             jsonb,
    output_size        integer,
    output_dropped     boolean NOT NULL DEFAULT false,
    request            jsonb,
    error              jsonb,
    duration_ms        integer,
    idempotency_key    text,
    fingerprint        text,
    started_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at        timestamptz
);
CREATE UNIQUE INDEX action_runs_idempotency_idx ON action_runs (workspace_id, connection_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX action_runs_started_idx ON action_runs (workspace_id, started_at DESC, id DESC);
CREATE INDEX action_runs_connection_idx ON action_runs (workspace_id, connection_id, started_at DESC);
CREATE INDEX action_runs_retention_idx ON action_runs (finished_at) WHERE NOT output_dropped;
