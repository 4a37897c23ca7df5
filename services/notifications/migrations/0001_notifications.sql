-- Webhook endpoints, their deliveries (one per event and endpoint) and every attempt.
CREATE TABLE endpoints (
    id                         uuid PRIMARY KEY,
    workspace_id               uuid NOT NULL,
    url                        text NOT NULL,
    events                     text[] NOT NULL,
    enabled                    boolean NOT NULL DEFAULT true,
    description                text,
    disabled_reason            text,
    secret_sealed              text NOT NULL,
    previous_secret_sealed     text,
    previous_secret_expires_at timestamptz,
    failing_since              timestamptz,
    deleted_at                 timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX endpoints_list_idx ON endpoints (workspace_id, id) WHERE deleted_at IS NULL;

CREATE TABLE deliveries (
    id               text PRIMARY KEY,  -- msg_<hex>: the webhook-id, stable across attempts
    workspace_id     uuid NOT NULL,
    endpoint_id      uuid NOT NULL REFERENCES endpoints (id),
    event_id         uuid,              -- null for a test delivery
    event_type       text NOT NULL,
    body             text NOT NULL,     -- exactly the bytes signed and sent
    status           text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempt_count    integer NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error       text,
    next_attempt_at  timestamptz,
    job_id           uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX deliveries_log_idx ON deliveries (workspace_id, endpoint_id, created_at DESC, id DESC);
CREATE INDEX deliveries_retention_idx ON deliveries (created_at) WHERE status <> 'pending';

CREATE TABLE delivery_attempts (
    id           bigserial PRIMARY KEY,
    delivery_id  text NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    workspace_id uuid NOT NULL,
    attempted_at timestamptz NOT NULL,
    status_code  integer,
    duration_ms  integer NOT NULL,
    response     text,
    error        text
);
CREATE INDEX delivery_attempts_delivery_idx ON delivery_attempts (delivery_id, id);
