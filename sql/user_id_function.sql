CREATE OR REPLACE FUNCTION {{function}}()
 RETURNS text
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
    -- The caller's user id, for row-level security ({{source}}). Policies call it as
    -- (SELECT ...), so it runs once per statement.
    SELECT COALESCE({{jwt_subject}},
                    NULLIF(pg_catalog.current_setting('mem0.user_id', true), ''))
$function$;
