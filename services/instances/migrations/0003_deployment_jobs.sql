-- Deployment steps run as jobs of queue 'deployments' (libs/common/jobs.py): the job's id is
-- the step's, its partition the connection and element. Enqueue a job for every step still
-- pending or running in an active deployment (a running one's lease is honoured: its job
-- waits for it to end), then drop the columns the jobs now hold. A migration cannot read
-- settings: the jobs get the default TETHER_STEP_MAX_ATTEMPTS (5), attempts made so far count.
INSERT INTO jobs (id, workspace_id, queue, kind, payload, partition_key, attempts, max_attempts,
    not_before, dedupe_key)
SELECT s.id, s.workspace_id, 'deployments', 'step', '{}'::jsonb,
       d.connection_id::text || ':' || s.element_key, s.attempts, 5,
       CASE WHEN s.status = 'running' THEN greatest(s.next_attempt_at, coalesce(s.lease_until, now()))
            ELSE s.next_attempt_at END,
       'step:' || s.id::text
FROM deployment_steps s JOIN deployments d ON d.id = s.deployment_id
WHERE s.status IN ('pending', 'running') AND d.status IN ('pending', 'running')
ORDER BY s.next_attempt_at, s.ord
ON CONFLICT DO NOTHING;

DROP INDEX deployment_steps_ready_idx;
DROP INDEX deployment_steps_leased_idx;
ALTER TABLE deployment_steps DROP COLUMN lease_owner, DROP COLUMN lease_until,
    DROP COLUMN next_attempt_at;
