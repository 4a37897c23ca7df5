-- The transactional outbox: a state change and its event commit together; the relay
-- publishes pending rows to JetStream (Nats-Msg-Id = id) and marks them sent.
CREATE TABLE outbox (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    subject      text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at      timestamptz
);
CREATE INDEX outbox_pending_idx ON outbox (created_at) WHERE sent_at IS NULL;

-- Event ids a durable consumer of this service has handled, so a redelivery is a no-op.
CREATE TABLE processed_events (
    consumer     text NOT NULL,
    event_id     uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
