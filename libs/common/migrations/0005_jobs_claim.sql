-- The claim walks partitions, not jobs (libs/common/job_store.py): the distinct partitions
-- with pending jobs by a skip scan, each partition's head, and the jobs without a partition,
-- each from an index holding exactly those rows, so a deep partition costs a claim nothing.
CREATE INDEX jobs_pending_partition_idx ON jobs (queue, partition_key, not_before, seq)
    WHERE status = 'pending' AND partition_key IS NOT NULL;
CREATE INDEX jobs_pending_unpartitioned_idx ON jobs (queue, not_before, seq)
    WHERE status = 'pending' AND partition_key IS NULL;
