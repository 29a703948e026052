CREATE OR REPLACE FUNCTION {{function}}(backed_up jsonb)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
DECLARE
    inserted bigint;
    top bigint;
BEGIN
    -- Definer rights: the history is written only by its owner, by the history trigger and
    -- by this function, which `python -m components restore` calls (as the service role)
    -- with backed-up rows. A row whose id exists is left alone: the audit is never
    -- rewritten. No conflict target: naming one makes PostgreSQL check the owner's SELECT
    -- policies on every new row, and FORCE ROW LEVEL SECURITY gives the owner none here.
    -- The id is the table's only unique key, so the conflicts are the same.
    INSERT INTO {{history}} OVERRIDING SYSTEM VALUE
    SELECT * FROM pg_catalog.jsonb_populate_recordset(NULL::{{history}}, backed_up)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    -- Keep the id sequence ahead of every restored id, or the next trigger insert collides.
    SELECT pg_catalog.max((r.value ->> 'id')::bigint) INTO top
    FROM pg_catalog.jsonb_array_elements(backed_up) r;
    IF top >= (SELECT s.last_value FROM {{sequence}} s) THEN
        PERFORM pg_catalog.setval('{{sequence}}'::regclass, top);
    END IF;
    RETURN inserted;
END
$function$;
