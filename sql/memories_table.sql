CREATE TABLE {{table}} (
    id uuid NOT NULL,
    vector {{vector_type}},
    payload jsonb,
    CONSTRAINT {{pkey}} PRIMARY KEY (id)
);
