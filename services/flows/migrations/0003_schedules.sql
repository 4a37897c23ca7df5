-- Schedule triggers: one row per enabled, non-archived flow instance whose base revision
-- runs on a cron, reconciled from flow_instances by services/flows/triggers/schedules.py.
-- next_at is the next tick to run (NULL: never, the cron or the time zone cannot be used).
CREATE TABLE flow_schedules (
    flow_instance_id uuid PRIMARY KEY REFERENCES flow_instances (id) ON DELETE CASCADE,
    workspace_id     uuid NOT NULL,
    cron             text NOT NULL,
    timezone         text NOT NULL,
    next_at          timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX flow_schedules_due_idx ON flow_schedules (next_at) WHERE next_at IS NOT NULL;
CREATE INDEX flow_schedules_workspace_idx ON flow_schedules (workspace_id, flow_instance_id);
