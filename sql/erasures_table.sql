CREATE TABLE {{table}} (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    kind text NOT NULL,
    subject_hash text NOT NULL,
    erased_at timestamp with time zone DEFAULT now() NOT NULL,
    erased_by text DEFAULT SESSION_USER NOT NULL,
    removed jsonb NOT NULL,
    CONSTRAINT {{pkey}} PRIMARY KEY (id),
    CONSTRAINT {{kind_check}} CHECK ((kind = ANY (ARRAY['user'::text, 'agent'::text, 'run'::text])))
);
