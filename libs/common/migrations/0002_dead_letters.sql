-- Events a durable consumer of this service failed on, one row per stream message: written
-- on each failure while retries remain (gave_up_at NULL; deleted when a retry succeeds),
-- and for good when the consumer gives up (unreadable, or its last allowed attempt failed).
-- An operator reads them with `tether dead-letters`; nothing here is handled again.
CREATE TABLE dead_letters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer        text NOT NULL,
    stream_seq      bigint NOT NULL,
    subject         text NOT NULL,
    event_id        uuid,
    workspace_id    uuid,
    payload         text NOT NULL,
    payload_size    integer NOT NULL,
    error           text NOT NULL,
    deliveries      integer NOT NULL,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    gave_up_at      timestamptz,
    UNIQUE (consumer, stream_seq)
);
CREATE INDEX dead_letters_gave_up_idx ON dead_letters (id) WHERE gave_up_at IS NOT NULL;
