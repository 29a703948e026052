CREATE TABLE {{table}} (
    run_id text NOT NULL,
    seq bigint NOT NULL,
    id uuid NOT NULL,
    vector {{vector_type}},
    payload jsonb NOT NULL,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    source_had_vector boolean NOT NULL,
    origin text NOT NULL,
    CONSTRAINT {{pkey}} PRIMARY KEY (run_id, seq),
    CONSTRAINT {{fkey}} FOREIGN KEY (run_id) REFERENCES {{runs}}(id) ON DELETE CASCADE
);
