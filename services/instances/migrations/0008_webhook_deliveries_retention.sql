-- The dedupe store of inbound deliveries is swept after TETHER_WEBHOOK_DEDUPE_DAYS.
CREATE INDEX webhook_deliveries_received_idx ON webhook_deliveries (received_at);
