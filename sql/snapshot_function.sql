CREATE OR REPLACE FUNCTION {{function}}(keep interval)
 RETURNS bigint
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
DECLARE
    snapshot bigint;
    memory_count bigint;
    entity_count bigint;
    relationship_count bigint;
BEGIN
    -- Invoker rights, and every table forces row-level security: a caller that does not
    -- bypass it would copy only the rows its policies show. Refuse rather than keep a
    -- partial snapshot that looks whole.
    IF NOT (SELECT r.rolsuper OR r.rolbypassrls FROM pg_catalog.pg_roles r
            WHERE r.rolname = CURRENT_USER) THEN
        RAISE EXCEPTION 'a snapshot must be taken by a role that bypasses row-level security; % does not', CURRENT_USER
            USING HINT = 'schedule the job as a superuser or a BYPASSRLS role (the deploying role)';
    END IF;
    -- One statement: its data-modifying parts share one snapshot of the database, so the
    -- copied relationships and memories agree.
    WITH taken AS (
        INSERT INTO {{snapshots}} DEFAULT VALUES RETURNING id
    ), copied_memories AS (
        INSERT INTO {{backup_memories}} (snapshot_id, id, vector, payload, created_at, updated_at)
        SELECT taken.id, m.id, m.vector, m.payload, m.created_at, m.updated_at
        FROM {{memories}} m, taken
        RETURNING 1
    ), copied_entities AS (
        INSERT INTO {{backup_entities}} (snapshot_id, id, vector, payload, created_at, updated_at)
        SELECT taken.id, e.id, e.vector, e.payload, e.created_at, e.updated_at
        FROM {{entities}} e, taken
        RETURNING 1
    ), copied_relationships AS (
        INSERT INTO {{backup_relationships}} (snapshot_id, id, source_memory_id, target_memory_id,
                    relationship_type, strength, metadata, user_id, created_at, org_id, updated_at)
        SELECT taken.id, r.id, r.source_memory_id, r.target_memory_id, r.relationship_type,
               r.strength, r.metadata, r.user_id, r.created_at, r.org_id, r.updated_at
        FROM {{relationships}} r, taken
        RETURNING 1
    )
    SELECT taken.id,
           (SELECT pg_catalog.count(*) FROM copied_memories),
           (SELECT pg_catalog.count(*) FROM copied_entities),
           (SELECT pg_catalog.count(*) FROM copied_relationships)
    INTO snapshot, memory_count, entity_count, relationship_count
    FROM taken;
    UPDATE {{snapshots}} s
    SET memories = memory_count, entities = entity_count, relationships = relationship_count
    WHERE s.id = snapshot;
    -- Retention: older snapshots go, with their rows (ON DELETE CASCADE).
    DELETE FROM {{snapshots}} s WHERE s.taken_at < pg_catalog.now() - keep;
    RETURN snapshot;
END
$function$;
