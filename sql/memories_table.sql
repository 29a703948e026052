CREATE TABLE {{table}} (
    id uuid NOT NULL,
    vector {{vector_type}},
    payload jsonb,
    user_id text GENERATED ALWAYS AS ((payload ->> 'user_id'::text)) STORED,
    agent_id text GENERATED ALWAYS AS ((payload ->> 'agent_id'::text)) STORED,
    run_id text GENERATED ALWAYS AS ((payload ->> 'run_id'::text)) STORED,
    org_id text GENERATED ALWAYS AS ((payload ->> 'org_id'::text)) STORED,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT {{pkey}} PRIMARY KEY (id)
);
ALTER TABLE {{table}} ALTER COLUMN vector SET STORAGE MAIN;
ALTER TABLE {{table}} SET (toast_tuple_target=8160);
