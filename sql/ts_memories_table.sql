CREATE TABLE {{table}} (
    id text NOT NULL,
    embedding {{vector_type}},
    metadata jsonb,
    user_id text GENERATED ALWAYS AS ((metadata ->> 'userId'::text)) STORED,
    agent_id text GENERATED ALWAYS AS ((metadata ->> 'agentId'::text)) STORED,
    run_id text GENERATED ALWAYS AS ((metadata ->> 'runId'::text)) STORED,
    org_id text GENERATED ALWAYS AS ((metadata ->> 'orgId'::text)) STORED,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    CONSTRAINT memories_pkey PRIMARY KEY (id)
);
