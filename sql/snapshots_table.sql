CREATE TABLE {{table}} (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    taken_at timestamp with time zone DEFAULT now() NOT NULL,
    memories bigint DEFAULT 0 NOT NULL,
    entities bigint DEFAULT 0 NOT NULL,
    relationships bigint DEFAULT 0 NOT NULL,
    CONSTRAINT {{pkey}} PRIMARY KEY (id)
);
