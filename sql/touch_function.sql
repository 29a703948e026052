CREATE OR REPLACE FUNCTION {{function}}()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
BEGIN
    -- The database keeps the times: created_at never changes, updated_at follows each update.
    NEW.created_at := OLD.created_at;
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END
$function$;
