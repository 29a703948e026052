CREATE OR REPLACE FUNCTION {{function}}(erased_kind text, subject text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
DECLARE
    key text;
    memory_ids uuid[];
    counts jsonb := '{}'::jsonb;
    n bigint;
    salt_value text;
BEGIN
    -- Definer rights: the one way a person's rows leave every table the stack declares
    -- (the history's only deletion). The owner's policies show rows only while
    -- mem0.erasing is on, which this function sets for its transaction. Everything runs
    -- in the caller's one transaction: all of it is removed, or nothing.
    IF erased_kind IS NULL OR erased_kind NOT IN ('user', 'agent', 'run') THEN
        RAISE EXCEPTION 'erased_kind must be user, agent or run, not %', erased_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF subject IS NULL OR subject = '' THEN
        RAISE EXCEPTION 'the % id to erase is empty', erased_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    key := erased_kind || '_id';
    PERFORM pg_catalog.set_config('mem0.erasing', 'on', true);
{{collect}}
{{deletes}}
    -- The record holds no content: the kind, when, who, the counts, and the id hashed with
    -- this database's secret salt (made by the first erasure; only the owner reads it).
    INSERT INTO {{salt}} (secret)
    VALUES (pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
        pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, 'UTF8')),
        'hex'))
    ON CONFLICT DO NOTHING;
    SELECT k.secret INTO salt_value FROM {{salt}} k;
    INSERT INTO {{erasures}} (kind, subject_hash, removed)
    VALUES (erased_kind, pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
        salt_value || ':' || erased_kind || ':' || subject, 'UTF8')), 'hex'), counts);
    PERFORM pg_catalog.set_config('mem0.erasing', 'off', true);
    RETURN counts;
END
$function$;
