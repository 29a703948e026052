CREATE TABLE {{table}} (
    run_id text NOT NULL,
    batch integer NOT NULL,
    first_seq bigint NOT NULL,
    last_seq bigint NOT NULL,
    inserted integer NOT NULL,
    updated integer NOT NULL,
    unchanged integer NOT NULL,
    done_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    CONSTRAINT {{pkey}} PRIMARY KEY (run_id, batch),
    CONSTRAINT {{fkey}} FOREIGN KEY (run_id) REFERENCES {{runs}}(id) ON DELETE CASCADE
);
