-- Data records (issue 15): the synced copy of each data-source instance's records, the
-- passes of its sync, and when each instance's next scheduled pass is due.
--
-- data_records: one row per record id ever seen. ``hash`` is SHA-256 of the record's
-- canonical JSON (change detection); ``updated_at`` the app's own time (updatedAtPath);
-- ``last_modified_at`` when Tether last saw it change (created, updated, deleted or back);
-- ``seen_pass`` the last full pass that read it (a completed full pass deletes the rest).
CREATE TABLE data_records (
    workspace_id     uuid NOT NULL,
    instance_id      uuid NOT NULL,
    record_id        text NOT NULL,
    hash             bytea NOT NULL,
    data             jsonb NOT NULL,
    updated_at       timestamptz,
    deleted_at       timestamptz,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_modified_at timestamptz NOT NULL DEFAULT now(),
    seen_pass        uuid,
    PRIMARY KEY (workspace_id, instance_id, record_id)
);
CREATE INDEX data_records_changes_idx
    ON data_records (workspace_id, instance_id, last_modified_at, record_id);

-- sync_passes: one pass over a collection. ``next_request`` is the page to read next,
-- written in the transaction that stores the page before it, so a pass resumes after a
-- crash where it stopped (null: every page is stored, only the ending is left).
-- At most one open (running or held) pass per instance.
CREATE TABLE sync_passes (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    instance_id  uuid NOT NULL,
    mode         text NOT NULL,
    status       text NOT NULL,
    since        timestamptz,
    next_request jsonb,
    pages        integer NOT NULL DEFAULT 0,
    records      integer NOT NULL DEFAULT 0,
    created      integer NOT NULL DEFAULT 0,
    updated      integer NOT NULL DEFAULT 0,
    deleted      integer NOT NULL DEFAULT 0,
    would_delete integer,
    live_records integer,
    error        text,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at     timestamptz
);
CREATE INDEX sync_passes_instance_idx ON sync_passes (workspace_id, instance_id, started_at DESC);
CREATE UNIQUE INDEX sync_passes_open_idx ON sync_passes (instance_id)
    WHERE status IN ('running', 'held');

-- data_source_syncs: when an instance's next scheduled pass is due (replicas claim due rows
-- with SKIP LOCKED and enqueue one job each, deduplicated by instance and due time).
CREATE TABLE data_source_syncs (
    instance_id  uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    next_due_at  timestamptz NOT NULL
);
CREATE INDEX data_source_syncs_due_idx ON data_source_syncs (next_due_at);
