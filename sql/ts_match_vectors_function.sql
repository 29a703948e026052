CREATE OR REPLACE FUNCTION {{function}}(query_embedding {{vector}}, match_count integer, filter jsonb DEFAULT '{}'::jsonb)
 RETURNS TABLE(id text, similarity double precision, metadata jsonb)
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
BEGIN
    -- The TypeScript SDK's contract: cosine similarity over `memories`, filtered by
    -- metadata containment. Security invoker, so row-level security applies.
    RETURN QUERY
    SELECT t.id, 1 - (t.embedding OPERATOR({{schema}}.<=>) query_embedding) AS similarity, t.metadata
    FROM {{table}} t
    WHERE filter = '{}'::jsonb OR t.metadata @> filter
    ORDER BY t.embedding OPERATOR({{schema}}.<=>) query_embedding
    LIMIT match_count;
END
$function$;
