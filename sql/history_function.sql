CREATE OR REPLACE FUNCTION {{function}}()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
DECLARE
    old_row jsonb;
    new_row jsonb;
BEGIN
    -- Definer rights: the history is written for every role, but no role except the owner
    -- may write to it directly. The embedding is left out unless the stack keeps it
    -- (historyIncludesVectors), so history rows stay small.
    IF TG_OP <> 'INSERT' THEN
        old_row := pg_catalog.to_jsonb(OLD){{strip_vector}};
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_row := pg_catalog.to_jsonb(NEW){{strip_vector}};
    END IF;
    INSERT INTO {{history}} (memory_id, operation, old_value, new_value, vector_changed, user_id,
                         org_id, run_id)
    VALUES (
        CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
        CASE TG_OP WHEN 'INSERT' THEN 'create' WHEN 'UPDATE' THEN 'update' ELSE 'delete' END,
        old_row,
        new_row,
        TG_OP = 'UPDATE' AND NOT COALESCE(OLD.vector OPERATOR({{ext_schema}}.=) NEW.vector,
                                          OLD.vector IS NULL AND NEW.vector IS NULL),
        CASE WHEN TG_OP = 'DELETE' THEN OLD.user_id ELSE NEW.user_id END,
        CASE WHEN TG_OP = 'DELETE' THEN OLD.org_id ELSE NEW.org_id END,
        CASE WHEN TG_OP = 'DELETE' THEN OLD.run_id ELSE NEW.run_id END);
    RETURN NULL;
END
$function$;
