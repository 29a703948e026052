CREATE TABLE {{table}} (
    id text NOT NULL,
    memory_id text NOT NULL,
    previous_value text,
    new_value text,
    action text NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone,
    is_deleted integer DEFAULT 0,
    CONSTRAINT memory_history_pkey PRIMARY KEY (id)
);
