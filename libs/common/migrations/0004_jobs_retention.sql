-- The retention sweep (libs/common/jobs.py): a queue's finished jobs, oldest first.
CREATE INDEX jobs_finished_idx ON jobs (queue, finished_at)
    WHERE status IN ('succeeded', 'failed', 'cancelled');
