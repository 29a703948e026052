CREATE OR REPLACE FUNCTION {{function}}()
 RETURNS text
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
    -- The caller's {{what}} (mem0's {{claim}}): the JWT claim {{claim}}, else mem0.{{claim}}.
    SELECT COALESCE(NULLIF(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> '{{claim}}',
                    NULLIF(pg_catalog.current_setting('mem0.{{claim}}', true), ''))
$function$;
