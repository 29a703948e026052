CREATE OR REPLACE FUNCTION {{function}}()
 RETURNS text[]
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
    -- The organisations the caller belongs to. Definer rights: the membership table is read
    -- as its owner, whatever the caller may read, and once per statement.
    SELECT COALESCE(pg_catalog.array_agg(m.org_id ORDER BY m.org_id), '{}'::text[])
    FROM {{membership}} m
    WHERE m.user_id = {{user_id}}()
$function$;
