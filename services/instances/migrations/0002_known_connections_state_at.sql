-- When the state a known connection holds was true at the connections service: an event's
-- occurredAt, or a read's updatedAt. A write replaces the state only with a newer one, so
-- a deployment's read from before a disconnect cannot undo the disconnect's event.
-- Rows from before this column know no time: anything newer replaces them.
ALTER TABLE known_connections ADD COLUMN state_at timestamptz NOT NULL DEFAULT '-infinity';
