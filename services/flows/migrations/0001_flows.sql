-- Flows with their revision history, and flow instances with their customisation.
CREATE TABLE flows (
    id              uuid PRIMARY KEY,
    workspace_id    uuid NOT NULL,
    key             text NOT NULL,
    level           text NOT NULL CHECK (level IN ('universal', 'app', 'customer')),
    integration_key text,
    customer_id     text,
    definition      jsonb NOT NULL,
    auto_deploy     boolean NOT NULL DEFAULT false,
    revision        integer NOT NULL DEFAULT 1,
    archived_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, key)
);
CREATE INDEX flows_list_idx ON flows (workspace_id, id);
CREATE INDEX flows_auto_idx ON flows (workspace_id, level) WHERE auto_deploy AND archived_at IS NULL;

CREATE TABLE flow_revisions (
    flow_id      uuid NOT NULL REFERENCES flows (id),
    workspace_id uuid NOT NULL,
    revision     integer NOT NULL,
    definition   jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flow_id, revision)
);

CREATE TABLE flow_instances (
    id              uuid PRIMARY KEY,
    workspace_id    uuid NOT NULL,
    flow_id         uuid NOT NULL REFERENCES flows (id),
    connection_id   uuid NOT NULL,
    customer_id     text NOT NULL,
    integration_key text NOT NULL,
    base_revision   integer NOT NULL,
    customization   jsonb NOT NULL DEFAULT '{}',
    enabled         boolean NOT NULL DEFAULT true,
    archived_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, flow_id, connection_id)
);
CREATE INDEX flow_instances_list_idx ON flow_instances (workspace_id, id);
CREATE INDEX flow_instances_connection_idx ON flow_instances (workspace_id, connection_id);
CREATE INDEX flow_instances_customer_idx ON flow_instances (workspace_id, customer_id, id);
