CREATE OR REPLACE FUNCTION {{function}}(query {{vector}}, match_count integer DEFAULT 10, filter jsonb DEFAULT '{}'::jsonb)
 RETURNS TABLE(id uuid, similarity double precision, payload jsonb)
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
    -- Security invoker: row-level security applies to the caller, as for a plain SELECT.
    SELECT m.id, 1 - (m.vector OPERATOR({{schema}}.<=>) query) AS similarity, m.payload
    FROM {{table}} m
    WHERE m.payload @> filter
    ORDER BY m.vector OPERATOR({{schema}}.<=>) query
    LIMIT match_count
$function$;
