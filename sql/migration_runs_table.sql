CREATE TABLE {{table}} (
    id text NOT NULL,
    source_kind text NOT NULL,
    source_spec jsonb NOT NULL,
    target_table text NOT NULL,
    dims integer NOT NULL,
    options jsonb NOT NULL,
    state text DEFAULT 'running'::text NOT NULL,
    staged_seq bigint DEFAULT 0 NOT NULL,
    staged_rows bigint DEFAULT 0 NOT NULL,
    staging_done boolean DEFAULT false NOT NULL,
    skipped jsonb DEFAULT '[]'::jsonb NOT NULL,
    failure text,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    started_by text DEFAULT SESSION_USER NOT NULL,
    CONSTRAINT {{pkey}} PRIMARY KEY (id),
    CONSTRAINT {{check}} CHECK ((state = ANY (ARRAY['running'::text, 'done'::text, 'failed'::text, 'rolled_back'::text])))
);
