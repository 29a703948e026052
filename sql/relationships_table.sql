CREATE TABLE {{table}} (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    source_memory_id uuid NOT NULL,
    target_memory_id uuid NOT NULL,
    relationship_type text NOT NULL,
    strength double precision DEFAULT 1.0 NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    user_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    org_id text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT memory_relationships_pkey PRIMARY KEY (id),
    CONSTRAINT memory_relationships_source_target_type_key UNIQUE (source_memory_id, target_memory_id, relationship_type),
    CONSTRAINT memory_relationships_source_memory_id_fkey FOREIGN KEY (source_memory_id) REFERENCES {{memories}}(id) ON DELETE CASCADE,
    CONSTRAINT memory_relationships_target_memory_id_fkey FOREIGN KEY (target_memory_id) REFERENCES {{memories}}(id) ON DELETE CASCADE,
    CONSTRAINT memory_relationships_no_self_loop CHECK ((source_memory_id <> target_memory_id)),
    CONSTRAINT memory_relationships_strength_check CHECK (((strength >= (0)::double precision) AND (strength <= (1)::double precision)))
);
