-- Durable jobs (libs/common/jobs.py): enqueued inside the caller's transaction, claimed
-- with FOR UPDATE SKIP LOCKED, leased, retried with backoff up to max_attempts.
-- seq orders jobs enqueued at the same not_before (FIFO within a partition).
CREATE TABLE jobs (
    id            uuid PRIMARY KEY,
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    workspace_id  uuid,
    queue         text NOT NULL,
    kind          text NOT NULL,
    payload       jsonb NOT NULL DEFAULT '{}',
    partition_key text,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts      integer NOT NULL DEFAULT 0,
    max_attempts  integer NOT NULL CHECK (max_attempts >= 1),
    not_before    timestamptz NOT NULL DEFAULT now(),
    lease_owner   text,
    lease_until   timestamptz,
    last_error    text,
    dedupe_key    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
-- The claim: due pending jobs in (not_before, seq) order, leases that ran out, and the
-- running jobs of a partition (its concurrency limit).
CREATE INDEX jobs_ready_idx ON jobs (queue, not_before, seq) WHERE status = 'pending';
CREATE INDEX jobs_leased_idx ON jobs (queue, lease_until) WHERE status = 'running';
CREATE INDEX jobs_partition_idx ON jobs (queue, partition_key, not_before, seq)
    WHERE status IN ('pending', 'running');
CREATE UNIQUE INDEX jobs_dedupe_idx ON jobs (queue, dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX jobs_workspace_idx ON jobs (workspace_id, queue, created_at);
CREATE INDEX jobs_partition_finished_idx ON jobs (queue, partition_key, finished_at)
    WHERE partition_key IS NOT NULL AND finished_at IS NOT NULL;
