-- One role per service, each owning only its own schema (run once as a superuser).
-- Passwords are set by your secret manager: ALTER ROLE tether_identity PASSWORD '…';
-- Checked by tests/deploy/test_postgres_roles.py: a service's role cannot read another schema.
DO $$
DECLARE
    svc text;
BEGIN
    FOREACH svc IN ARRAY ARRAY['identity', 'connections', 'instances', 'flows', 'notifications'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tether_' || svc) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', 'tether_' || svc);
        END IF;
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', svc, 'tether_' || svc);
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', svc, 'tether_' || svc);
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', svc);
        EXECUTE format('ALTER ROLE %I SET search_path = %I', 'tether_' || svc, svc);
    END LOOP;
END
$$;
-- Nobody but a schema's owner may create objects in the database's public schema either.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
