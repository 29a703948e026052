CREATE OR REPLACE FUNCTION {{function}}(run_id text, ids uuid[])
 RETURNS integer
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
DECLARE
    -- The arguments under other names: run_id is also a column of the tables below.
    session_id CONSTANT text := run_id;
    wanted CONSTANT uuid[] := ids;
    promoted text[];
    n integer;
BEGIN
    -- Invoker rights: the caller's own policies decide which rows it reaches (under
    -- sessionScope only inside that session). mem0 keeps run_id in the payload; the column
    -- is generated from it, so removing the key moves the row to the user (or agent)
    -- level; the history trigger records the change and the touch trigger its time.
    IF session_id IS NULL OR session_id = '' THEN
        RAISE EXCEPTION 'run_id is empty: name the session whose memories to promote'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF wanted IS NULL THEN
        RAISE EXCEPTION 'ids is null: give the memory ids to promote (an array, maybe empty)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Skipped, not counted: ids of another session or none, rows the caller cannot reach,
    -- and rows naming no user or agent (without run_id nothing could find them).
    WITH moved AS (
        UPDATE {{memories}} m SET payload = m.payload - 'run_id'::text
        WHERE m.id = ANY (wanted) AND m.run_id = session_id
          AND (m.user_id IS NOT NULL OR m.agent_id IS NOT NULL)
        RETURNING m.id::text AS id
    )
    SELECT pg_catalog.array_agg(moved.id) INTO promoted FROM moved;
    n := COALESCE(pg_catalog.cardinality(promoted), 0);
    IF n = 0 THEN
        RETURN 0;
    END IF;
    -- An entity of the session follows once it links a promoted memory and no memory of
    -- the session any more: its text may come from memories that stay in the session.
    UPDATE {{entities}} e SET payload = e.payload - 'run_id'::text
    WHERE e.run_id = session_id
      AND pg_catalog.jsonb_typeof(e.payload -> 'linked_memory_ids') = 'array'
      AND EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements_text(
                      CASE WHEN pg_catalog.jsonb_typeof(e.payload -> 'linked_memory_ids')
                                = 'array' THEN e.payload -> 'linked_memory_ids' END) l(id)
                  WHERE l.id = ANY (promoted))
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements_text(
                          CASE WHEN pg_catalog.jsonb_typeof(e.payload -> 'linked_memory_ids')
                                    = 'array' THEN e.payload -> 'linked_memory_ids' END) l(id)
                      JOIN {{memories}} s ON s.id::text = l.id
                      WHERE s.run_id = session_id);
    RETURN n;
END
$function$;
