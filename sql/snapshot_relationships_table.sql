CREATE TABLE {{table}} (
    snapshot_id bigint NOT NULL,
    id uuid NOT NULL,
    source_memory_id uuid NOT NULL,
    target_memory_id uuid NOT NULL,
    relationship_type text NOT NULL,
    strength double precision NOT NULL,
    metadata jsonb NOT NULL,
    user_id text,
    created_at timestamp with time zone NOT NULL,
    org_id text,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT {{pkey}} PRIMARY KEY (snapshot_id, id),
    CONSTRAINT {{fkey}} FOREIGN KEY (snapshot_id) REFERENCES {{snapshots}}(id) ON DELETE CASCADE
);
