-- Runs of flow instances, and each execution of their nodes.
CREATE TABLE flow_runs (
    id               uuid PRIMARY KEY,
    workspace_id     uuid NOT NULL,
    flow_instance_id uuid NOT NULL REFERENCES flow_instances (id),
    flow_id          uuid NOT NULL,
    revision         integer NOT NULL,
    connection_id    uuid NOT NULL,
    customer_id      text NOT NULL,
    integration_key  text NOT NULL,
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'completed', 'failed', 'stopped')),
    trigger          jsonb NOT NULL,               -- a RunTrigger
    input            jsonb,
    definition       jsonb NOT NULL,               -- the effective FlowDefinition it executes
    parameters       jsonb NOT NULL DEFAULT '{}',  -- the effective parameter values
    customer         jsonb,                        -- {id, name, fields}, read when it first starts
    dedupe_key       text,                         -- api:<Idempotency-Key>, event:<id>, tick:<time>
    rerun_of         uuid,
    from_node        text,
    stop_requested   boolean NOT NULL DEFAULT false,
    errors           jsonb NOT NULL DEFAULT '[]',
    nodes_executed   integer NOT NULL DEFAULT 0,   -- the loop guard's count
    active_ms        double precision NOT NULL DEFAULT 0,  -- time in nodes, delays excluded
    job_id           uuid,                         -- the job that runs (or resumes) it now
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    ended_at         timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX flow_runs_dedupe_idx ON flow_runs (workspace_id, flow_instance_id, dedupe_key)
    WHERE dedupe_key IS NOT NULL;
CREATE INDEX flow_runs_list_idx ON flow_runs (workspace_id, created_at DESC, id DESC);
CREATE INDEX flow_runs_instance_idx ON flow_runs (workspace_id, flow_instance_id, created_at DESC);
CREATE INDEX flow_runs_customer_idx ON flow_runs (workspace_id, customer_id, created_at DESC);
CREATE INDEX flow_runs_connection_idx ON flow_runs (workspace_id, connection_id, created_at DESC);
CREATE INDEX flow_runs_queued_idx ON flow_runs (workspace_id, connection_id) WHERE state = 'queued';
CREATE INDEX flow_runs_ended_idx ON flow_runs (ended_at) WHERE ended_at IS NOT NULL;

CREATE TABLE flow_run_nodes (
    workspace_id   uuid NOT NULL,
    run_id         uuid NOT NULL REFERENCES flow_runs (id) ON DELETE CASCADE,
    node_key       text NOT NULL,       -- a for-each's inner nodes: <forEachKey>.<innerKey>
    item           text NOT NULL DEFAULT '',  -- the for-each item index ('' outside one)
    seq            integer NOT NULL,    -- order of first execution within the run
    type           text NOT NULL,
    state          text NOT NULL
                   CHECK (state IN ('running', 'waiting', 'completed', 'failed', 'skipped')),
    attempts       integer NOT NULL DEFAULT 0,
    input          jsonb,               -- the node's config with its expressions resolved
    output         jsonb,
    output_size    integer,
    output_dropped boolean NOT NULL DEFAULT false,  -- too large, or past the retention
    reused         boolean NOT NULL DEFAULT false,  -- copied from the original run by a rerun
    logs           jsonb NOT NULL DEFAULT '[]',
    error          jsonb,               -- a RunError
    wait_until     timestamptz,         -- a delay: when the run goes on
    started_at     timestamptz,
    ended_at       timestamptz,
    PRIMARY KEY (run_id, node_key, item)
);
CREATE INDEX flow_run_nodes_workspace_idx ON flow_run_nodes (workspace_id, run_id);
