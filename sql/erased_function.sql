CREATE OR REPLACE FUNCTION {{function}}(erased_kind text, subjects text[])
 RETURNS text[]
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
    -- Which of `subjects` (ids of one kind) were erased: each is hashed with the salt the
    -- way forget() hashed it. Definer rights, read-only: the caller never sees the salt.
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT s.subject ORDER BY s.subject), '{}'::text[])
    FROM pg_catalog.unnest(subjects) s(subject), {{salt}} k, {{erasures}} e
    WHERE e.kind = erased_kind
      AND e.subject_hash = pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
          k.secret || ':' || erased_kind || ':' || s.subject, 'UTF8')), 'hex')
$function$;
