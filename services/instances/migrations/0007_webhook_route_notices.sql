-- Inbound webhooks are routed from each replica's memory (services/instances/webhook_routes.py):
-- a token's subscription and its app-event type. Any change to either, whoever makes it (a
-- deployment step, a PATCH, an operator's SQL), tells every replica on commit through
-- NOTIFY on channel 'tether_webhook_routes_<schema>', so each drops what it holds.
-- Payloads: 'subscription:<token hash, hex>' or 'app_event_type:<workspace id>:<key>'.
CREATE FUNCTION webhook_route_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'subscriptions' THEN
        PERFORM pg_notify('tether_webhook_routes_' || TG_TABLE_SCHEMA,
                          'subscription:' || encode(OLD.token_hash, 'hex'));
    ELSE
        PERFORM pg_notify('tether_webhook_routes_' || TG_TABLE_SCHEMA,
                          'app_event_type:' || OLD.workspace_id || ':' || OLD.key);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER subscriptions_webhook_route_changed
    AFTER UPDATE OR DELETE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION webhook_route_changed();

CREATE TRIGGER app_event_types_webhook_route_changed
    AFTER UPDATE OR DELETE ON app_event_types
    FOR EACH ROW EXECUTE FUNCTION webhook_route_changed();
