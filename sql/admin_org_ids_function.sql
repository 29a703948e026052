CREATE OR REPLACE FUNCTION {{function}}()
 RETURNS text[]
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
    -- The organisations where the caller is admin (orgAdmins). Definer rights, as for
    -- mem0_org_ids(): the membership table is read as its owner, once per statement, so a
    -- demotion takes effect with the caller's next statement.
    SELECT COALESCE(pg_catalog.array_agg(m.org_id ORDER BY m.org_id), '{}'::text[])
    FROM {{membership}} m
    WHERE m.user_id = {{user_id}}() AND m.role = 'admin'
$function$;
