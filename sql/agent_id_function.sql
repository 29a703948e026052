CREATE OR REPLACE FUNCTION {{function}}()
 RETURNS text
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
    -- The caller's agent (mem0's agent_id): the JWT claim agent_id, else mem0.agent_id.
    SELECT COALESCE(NULLIF(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'agent_id',
                    NULLIF(pg_catalog.current_setting('mem0.agent_id', true), ''))
$function$;
