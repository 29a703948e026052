CREATE TABLE {{table}} (
    org_id text NOT NULL,
    user_id text NOT NULL,
    added_at timestamp with time zone DEFAULT now() NOT NULL,
    role text DEFAULT 'member'::text NOT NULL,
    CONSTRAINT memory_org_members_pkey PRIMARY KEY (org_id, user_id),
    CONSTRAINT memory_org_members_role_check CHECK ((role = ANY (ARRAY['member'::text, 'admin'::text])))
);
