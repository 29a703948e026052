CREATE TABLE {{table}} (
    run_id text NOT NULL,
    history_id bigint NOT NULL,
    kind text NOT NULL,
    CONSTRAINT {{pkey}} PRIMARY KEY (run_id, history_id),
    CONSTRAINT {{fkey}} FOREIGN KEY (run_id) REFERENCES {{runs}}(id) ON DELETE CASCADE,
    CONSTRAINT {{check}} CHECK ((kind = ANY (ARRAY['caused'::text, 'rollback'::text])))
);
