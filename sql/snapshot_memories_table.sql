CREATE TABLE {{table}} (
    snapshot_id bigint NOT NULL,
    id uuid NOT NULL,
    vector {{vector_type}},
    payload jsonb,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT {{pkey}} PRIMARY KEY (snapshot_id, id),
    CONSTRAINT {{fkey}} FOREIGN KEY (snapshot_id) REFERENCES {{snapshots}}(id) ON DELETE CASCADE
);
