CREATE OR REPLACE FUNCTION {{function}}(start_id uuid, max_depth integer DEFAULT 2)
 RETURNS TABLE(neighbour_id uuid, depth integer, path uuid[], strength double precision, relationship_types text[])
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
BEGIN
    IF max_depth IS NULL OR max_depth NOT IN (1, 2) THEN
        RAISE EXCEPTION 'max_depth must be 1 or 2, not %', max_depth
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Follows relationships from source to target. A path never visits a memory twice, so
    -- cycles end the walk. Each neighbour is returned once: its shortest path, and of
    -- those the strongest (the product of the strengths along it).
    RETURN QUERY
    WITH RECURSIVE walk(node, hops, trail, weight, kinds) AS (
        SELECT r.target_memory_id, 1, ARRAY[r.source_memory_id, r.target_memory_id],
               r.strength, ARRAY[r.relationship_type]
        FROM {{relationships}} r
        WHERE r.source_memory_id = start_id
      UNION ALL
        SELECT r.target_memory_id, w.hops + 1, w.trail || r.target_memory_id,
               w.weight * r.strength, w.kinds || r.relationship_type
        FROM walk w
        JOIN {{relationships}} r ON r.source_memory_id = w.node
        WHERE w.hops < max_depth AND r.target_memory_id <> ALL (w.trail)
    )
    SELECT DISTINCT ON (w.node) w.node, w.hops, w.trail, w.weight, w.kinds
    FROM walk w
    WHERE w.node <> start_id
    ORDER BY w.node, w.hops, w.weight DESC;
END
$function$;
