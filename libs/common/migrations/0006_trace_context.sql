-- The W3C traceparent of whoever wrote the row (when tracing is on), so the event's
-- consumer and the job's worker continue the trace of the request that caused them.
ALTER TABLE outbox ADD COLUMN trace_context text;
ALTER TABLE jobs ADD COLUMN trace_context text;
