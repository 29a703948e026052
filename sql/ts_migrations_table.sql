CREATE TABLE {{table}} (
    user_id text NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    CONSTRAINT memory_migrations_pkey PRIMARY KEY (user_id)
);
