CREATE TABLE {{table}} (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    memory_id uuid NOT NULL,
    operation text NOT NULL,
    old_value jsonb,
    new_value jsonb,
    vector_changed boolean DEFAULT false NOT NULL,
    user_id text,
    login_role text DEFAULT SESSION_USER NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    org_id text,
    run_id text,
    CONSTRAINT memory_history_pkey PRIMARY KEY (id),
    CONSTRAINT memory_history_operation_check CHECK ((operation = ANY (ARRAY['create'::text, 'update'::text, 'delete'::text])))
);
