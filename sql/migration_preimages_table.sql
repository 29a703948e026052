CREATE TABLE {{table}} (
    run_id text NOT NULL,
    id uuid NOT NULL,
    seq bigint NOT NULL,
    existed boolean NOT NULL,
    vector {{vector_type}},
    payload jsonb,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    CONSTRAINT {{pkey}} PRIMARY KEY (run_id, id),
    CONSTRAINT {{fkey}} FOREIGN KEY (run_id) REFERENCES {{runs}}(id) ON DELETE CASCADE
);
