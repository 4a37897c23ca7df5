-- Workspaces (tenants) and their customers.
CREATE TABLE workspaces (
    id                         uuid PRIMARY KEY,
    key                        text NOT NULL UNIQUE,
    name                       text NOT NULL,
    secret_sealed              text NOT NULL,
    previous_secret_sealed     text,
    previous_secret_expires_at timestamptz,
    public_keys                jsonb NOT NULL DEFAULT '[]',
    settings                   jsonb NOT NULL DEFAULT '{}',
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE customers (
    workspace_id uuid NOT NULL REFERENCES workspaces (id),
    id           text NOT NULL,
    name         text,
    fields       jsonb NOT NULL DEFAULT '{}',
    archived_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX customers_name_idx ON customers (workspace_id, lower(name) text_pattern_ops);
CREATE INDEX customers_id_prefix_idx ON customers (workspace_id, id text_pattern_ops);
