CREATE OR REPLACE FUNCTION {{function}}()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
BEGIN
    -- A migration's writes and rollbacks keep the times they give (docs/migration.md):
    -- only in a transaction that set mem0_migration.keep_times, and only for a role that
    -- bypasses row-level security (the service role); an end user's role never can.
    IF pg_catalog.current_setting('mem0_migration.keep_times', true) = 'on' THEN
        IF (SELECT r.rolbypassrls OR r.rolsuper FROM pg_catalog.pg_roles r
            WHERE r.rolname = CURRENT_USER) THEN
            RETURN NEW;
        END IF;
    END IF;
    -- The database keeps the times: created_at never changes, updated_at follows each update.
    NEW.created_at := OLD.created_at;
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END
$function$;
