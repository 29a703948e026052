CREATE OR REPLACE FUNCTION {{function}}()
 RETURNS text
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
    -- The caller's session (mem0's run_id): the JWT claim run_id, else mem0.run_id.
    SELECT COALESCE(NULLIF(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'run_id',
                    NULLIF(pg_catalog.current_setting('mem0.run_id', true), ''))
$function$;
