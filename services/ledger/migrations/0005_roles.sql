-- Least-privilege roles (issue 13; ADR 0107).
--
--   ledger_migrate  owns every object of the ledger's schema. From this migration on, the runner
--                   (services/ledger/migrate.py) switches to it before each migration, so schema
--                   changes are made, and owned, by this role whoever connected.
--   ledger_app      what the ledger service connects as: SELECT, INSERT, UPDATE, DELETE on the
--                   tables, USAGE on the sequences, EXECUTE on the functions (PUBLIC's default).
--                   No DDL, no TRUNCATE, no ownership, nothing on schema_migrations.
--
-- Roles are cluster-wide: several databases on one server share them (the tests create a database
-- per run), so creating them tolerates their already existing, and a concurrent creation. Grants,
-- ownership and default privileges are per database and are set here for this one.
-- Neither role has a password. On Aurora both log in with IAM database authentication (rds_iam;
-- a password login is then refused); locally the server trusts loopback.

DO $$
BEGIN
    BEGIN
        CREATE ROLE ledger_migrate LOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;
    END;
    BEGIN
        CREATE ROLE ledger_app LOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;
    END;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') THEN
        GRANT rds_iam TO ledger_migrate, ledger_app;
    END IF;
    -- The user running this (the master user on Aurora, a superuser locally) must be able to
    -- SET ROLE ledger_migrate, as the runner does from now on and as ALTER ... OWNER TO requires.
    IF NOT pg_has_role(current_user, 'ledger_migrate', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT ledger_migrate TO %I', current_user);
        EXCEPTION WHEN unique_violation THEN
            NULL;
        END;
    END IF;
END
$$;

DO $$
DECLARE
    schema_name text := current_schema();
    owner_name text := current_user;
    object record;
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO ledger_migrate, ledger_app', current_database());
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO ledger_migrate', schema_name);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO ledger_app', schema_name);
    -- PostgreSQL 15+ already withholds CREATE from PUBLIC; older servers do not.
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', schema_name);

    -- Hand every object this user created so far to the migration role. Tables first: moving a
    -- table moves the sequences its identity columns own, which cannot be moved on their own.
    FOR object IN
        SELECT c.oid::regclass AS name FROM pg_class c
        WHERE c.relnamespace = schema_name::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND pg_get_userbyid(c.relowner) = owner_name
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO ledger_migrate', object.name);
    END LOOP;
    FOR object IN
        SELECT c.oid::regclass AS name FROM pg_class c
        WHERE c.relnamespace = schema_name::regnamespace AND c.relkind = 'S'
          AND pg_get_userbyid(c.relowner) = owner_name
    LOOP
        EXECUTE format('ALTER SEQUENCE %s OWNER TO ledger_migrate', object.name);
    END LOOP;
    FOR object IN
        SELECT p.oid::regprocedure AS name FROM pg_proc p
        WHERE p.pronamespace = schema_name::regnamespace AND pg_get_userbyid(p.proowner) = owner_name
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO ledger_migrate', object.name);
    END LOOP;

    -- What the application may do with what exists now, and with what later migrations create
    -- (as ledger_migrate through the runner, or as this user if it runs them directly).
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO ledger_app', schema_name);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO ledger_app', schema_name);
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES FOR ROLE ledger_migrate, %I IN SCHEMA %I '
        'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ledger_app', owner_name, schema_name);
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES FOR ROLE ledger_migrate, %I IN SCHEMA %I '
        'GRANT USAGE, SELECT ON SEQUENCES TO ledger_app', owner_name, schema_name);
END
$$;

-- The migration history is the runner's business alone.
REVOKE ALL ON schema_migrations FROM ledger_app;
