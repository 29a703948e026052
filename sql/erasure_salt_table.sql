CREATE TABLE {{table}} (
    id boolean DEFAULT true NOT NULL,
    secret text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT {{pkey}} PRIMARY KEY (id),
    CONSTRAINT {{one_row}} CHECK (id)
);
