-- Field mappings: how the workspace's own fields map to a data source's fields on each
-- connection. Definitions keep every revision (as actions do); instances hold a JSON Merge
-- Patch customisation over a base revision, the connection's field schema they were built
-- on (``fields_schema``, followed when the data-source instance's schema changes) and what
-- broke when a field the customisation maps disappeared (``problems``, [] when not broken).
CREATE TABLE field_mappings (
    workspace_id    uuid NOT NULL,
    key             text NOT NULL,
    level           text NOT NULL,
    integration_key text,
    customer_id     text,
    data_source_key text NOT NULL,
    definition      jsonb NOT NULL,
    auto_deploy     boolean NOT NULL DEFAULT false,
    revision        integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, key)
);
CREATE INDEX field_mappings_auto_deploy_idx ON field_mappings (workspace_id) WHERE auto_deploy;

CREATE TABLE field_mapping_revisions (
    workspace_id      uuid NOT NULL,
    field_mapping_key text NOT NULL,
    revision          integer NOT NULL,
    definition        jsonb NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, field_mapping_key, revision)
);

CREATE TABLE field_mapping_instances (
    id                uuid PRIMARY KEY,
    workspace_id      uuid NOT NULL,
    field_mapping_key text NOT NULL,
    data_source_key   text NOT NULL,
    connection_id     uuid NOT NULL,
    customer_id       text NOT NULL,
    integration_key   text NOT NULL,
    base_revision     integer NOT NULL,
    customization     jsonb NOT NULL DEFAULT '{}'::jsonb,
    fields_schema     jsonb,
    problems          jsonb NOT NULL DEFAULT '[]'::jsonb,
    archived_at       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, connection_id, field_mapping_key)
);
CREATE INDEX field_mapping_instances_key_idx
    ON field_mapping_instances (workspace_id, field_mapping_key);
CREATE INDEX field_mapping_instances_source_idx
    ON field_mapping_instances (workspace_id, connection_id, data_source_key);
