"""Every stack setting, declared once: key, type, default, allowed values, description,
secret, bounds, and the `Settings` field it fills.

`SETTINGS` is the one source for the parser (`parse.py`), Pulumi.yaml's `config:` block
(`pulumiyaml.py`) and the README's table (`markdown.py`). A setting's `field` names the
`Settings` field it fills, dotted for the grouped ones (`bench.rows`); how it fills it is
`fill`: as parsed, as a secret, as a schedule, or resolved with other keys by the
resolver of that field (`resolve.RESOLVERS`).
"""

from __future__ import annotations

from dataclasses import dataclass

from components.choice import Choice
from components.mem0 import DEFAULT_SEARCH_LIMIT
from components.settings.choices import (
    TEXT_SEARCH_CONFIGS,
    AppRoleIdentity,
    ClientProfile,
    IterativeScan,
    SslMode,
    Target,
    Tenancy,
)
from components.timeouts import LOCK_TIMEOUT
from components.vectorindex import MAX_DIMENSIONS, MAX_LISTS, IndexMeasure, IndexMethod

__all__ = [
    "JOB_SETTINGS",
    "MAX_COLLECTION_LENGTH",
    "PROJECT",
    "PROJECT_ROLE_KEYS",
    "SETTINGS",
    "SPECS_BY_KEY",
    "SUPABASE_END_USER_ROLES",
    "SUPABASE_OWNER",
    "SUPABASE_SERVICE_ROLE",
    "TYPESCRIPT_TABLE",
    "ConfigType",
    "EncryptedValue",
    "Fill",
    "SettingSpec",
]

PROJECT = "mem0infra"
# The roles Supabase provides; on target supabase the stack uses them and creates none of
# its own but the app role. `postgres` owns what the dashboard and migrations create.
SUPABASE_OWNER, SUPABASE_SERVICE_ROLE = "postgres", "service_role"
SUPABASE_END_USER_ROLES = ("anon", "authenticated")
# The TypeScript SDK's match_vectors() reads a table hard-coded as `memories`.
TYPESCRIPT_TABLE = "memories"
# Longest suffix the model appends to the collection name (`<collection>_entities_...`),
# so every derived name stays within PostgreSQL's 63 characters.
MAX_COLLECTION_LENGTH = 40


class ConfigType(Choice):
    """A setting's type, as Pulumi.yaml's typed `config:` schema names it."""

    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"


class Fill(Choice):
    """How a setting's parsed value becomes its `Settings` field."""

    VALUE = "value"  # as parsed (a `Choice` member for a closed set)
    SECRET = "secret"  # the value, or None when empty or encrypted (the engine decrypts it)
    SCHEDULE = "schedule"  # whitespace collapsed, or None when empty: the job is off
    RESOLVED = "resolved"  # computed with other keys by `resolve.RESOLVERS[field]`


# A closed set a setting's value becomes a member of (SettingSpec's own `type` field
# shadows the builtin inside the class body).
ChoiceSet = type[Choice]


class EncryptedValue:
    """A `secure:` value read from a stack file without the passphrase to decrypt it."""

    def __repr__(self) -> str:
        return "<encrypted>"


@dataclass(frozen=True)
class SettingSpec:
    """One setting: its config key and type, and the `Settings` field it fills."""

    key: str
    type: ConfigType
    default: str | int | bool
    description: str
    field: str  # the Settings field, dotted into BenchThresholds/LifecycleJobs
    choices: tuple[str, ...] | ChoiceSet = ()  # a Choice enum: the value becomes a member
    secret: bool = False
    minimum: int | None = None
    maximum: int | None = None
    cron: bool = False  # a pg_cron schedule (components.schedule); empty turns its job off
    resolved: bool = False  # the field is computed by resolve.RESOLVERS[field]

    @property
    def allowed(self) -> tuple[str, ...]:
        """The values a closed set allows, as plain strings (empty: any of the type)."""
        return self.choices if isinstance(self.choices, tuple) else self.choices.values()

    @property
    def enum(self) -> ChoiceSet | None:
        return None if isinstance(self.choices, tuple) else self.choices

    @property
    def fill(self) -> Fill:
        if self.resolved:
            return Fill.RESOLVED
        if self.secret:
            return Fill.SECRET
        return Fill.SCHEDULE if self.cron else Fill.VALUE


STRING, INTEGER, BOOLEAN = ConfigType.STRING, ConfigType.INTEGER, ConfigType.BOOLEAN

SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("target", STRING, "embedded",
                "Where the schema goes: a local embedded PostgreSQL (dev), any PostgreSQL "
                "with pgvector, or Supabase.", "target", choices=Target),
    SettingSpec("databaseUrl", STRING, "",
                "Connection URL (postgresql://...) of the deploying role (secret); required "
                "unless target is embedded.", "database_url", secret=True),
    SettingSpec("sslMode", STRING, "auto",
                "TLS of every connection the stack makes and exports (libpq sslmode): "
                "require encrypts, verify-ca also checks the server's certificate against "
                "sslRootCert, verify-full also its host name; auto means require, and "
                "disable on embedded (a local socket, no TLS).", "ssl_mode", choices=SslMode,
                resolved=True),
    SettingSpec("sslRootCert", STRING, "",
                "Absolute path of the root certificate (PEM) that verify-ca and verify-full "
                "check the server against (Supabase: the project's CA from the dashboard); "
                "read where the connection is made: the preflight checks it.",
                "ssl_root_cert"),
    SettingSpec("embeddedDataDir", STRING, "",
                "Data directory of the embedded server; empty means .pgdata/<stack>.",
                "embedded_data_dir", resolved=True),
    SettingSpec("dimensions", INTEGER, 1536,
                "Embedding dimensions (vector(N); halfvec(N), half precision, above 2000 with "
                "an hnsw or ivfflat index); equals mem0's embedding_model_dims.",
                "dimensions", minimum=1, maximum=MAX_DIMENSIONS),
    SettingSpec("collection", STRING, "memories",
                "Table name of the memories (mem0's collection_name), in schema public.",
                "collection"),
    SettingSpec("clientProfile", STRING, "python",
                "Which mem0 SDK the tables serve: python (the pgvector provider's "
                "id/vector/payload layout, with history trigger and graph) or typescript "
                "(the TS Supabase store's memories/match_vectors/memory_history contract).",
                "client_profile", choices=ClientProfile),
    SettingSpec("appRole", STRING, "mem0_app",
                "The role mem0 connects as: LOGIN, DML on the memory tables only, with the "
                "search settings below. Created by the stack unless it exists.", "app_role"),
    SettingSpec("appRolePassword", STRING, "",
                "Password of appRole (secret); required unless target is embedded; sent to "
                "the server only as a SCRAM verifier.", "app_role_password", secret=True),
    SettingSpec("hnswEfSearch", INTEGER, 200,
                "hnsw.ef_search for appRole: at least mem0's LIMIT of 80, or searches "
                "silently return fewer rows; 200 keeps recall@10 of a user's filtered "
                "search at 0.99.", "hnsw_ef_search", minimum=DEFAULT_SEARCH_LIMIT, maximum=1000),
    SettingSpec("iterativeScan", STRING, "auto",
                "hnsw.iterative_scan for appRole (pgvector >= 0.8), so filtered searches "
                "return full pages; auto means relaxed_order, except off on embedded "
                "(its pgvector is 0.6).", "iterative_scan", choices=IterativeScan,
                resolved=True),
    SettingSpec("historyIncludesVectors", BOOLEAN, False,
                "Keep the embedding in memory_history's old_value/new_value (large).",
                "history_includes_vectors"),
    SettingSpec("ftsLanguage", STRING, "",
                "Text search configuration of the optional full-text index on the memory "
                "text (the seed's FTS index, e.g. english); empty builds none.",
                "fts_language", choices=("", *TEXT_SEARCH_CONFIGS)),
    SettingSpec("tenancy", STRING, "user",
                "Who may see which rows (row-level security): each user their own, the "
                "members of an organisation its rows (org_id), or no end user at all "
                "(service).", "tenancy", choices=Tenancy),
    SettingSpec("sharedAgentKnowledge", BOOLEAN, False,
                "Rows with an agent_id and no user_id are readable by every signed-in "
                "user; only the service role writes them.", "shared_agent_knowledge"),
    SettingSpec("sessionScope", BOOLEAN, False,
                "Rows with a run_id are visible only to a caller whose session "
                "(mem0.run_id, or the JWT claim run_id) names that run.", "session_scope"),
    SettingSpec("orgAdmins", BOOLEAN, False,
                "Org tenancy only: members whose memory_org_members role is 'admin' read "
                "and manage (insert, update, delete) every row of that organisation, every "
                "member's and every session's; other members keep their own rows.",
                "org_admins"),
    SettingSpec("agentSpaces", BOOLEAN, False,
                "A caller with an agent identity (the JWT claim agent_id, else "
                "mem0.agent_id) writes only memories and entities of that agent; reading is "
                "unchanged. Binds end users and a bound appRole, not a trusted one.",
                "agent_spaces"),
    SettingSpec("appRoleIdentity", STRING, "trusted",
                "trusted: appRole reads and writes every row, and mem0's own filters "
                "separate users (its policy is `true`, so every mem0 search can use an "
                "index); required: appRole sees only the rows of the mem0.user_id its "
                "connection sets; optional: every row until the connection sets "
                "mem0.user_id (the planner cannot see through this rule: every mem0 search "
                "is a sequential scan).", "app_role_identity", choices=AppRoleIdentity),
    SettingSpec("ownerRole", STRING, "mem0_owner",
                "NOLOGIN role that owns every object (not on supabase, where postgres "
                "owns them). The deploying role must be a superuser or a member of it.",
                "owner_role", resolved=True),
    SettingSpec("readonlyRole", STRING, "mem0_readonly",
                "LOGIN role for dashboards and analysts: SELECT under row-level security "
                "(not on supabase).", "readonly_role", resolved=True),
    SettingSpec("readonlyRolePassword", STRING, "",
                "Password of readonlyRole (secret); required on target postgres.",
                "readonly_role_password", secret=True),
    SettingSpec("serviceRole", STRING, "mem0_service",
                "LOGIN BYPASSRLS role for backup, restore and migration: every row (on "
                "supabase: Supabase's service_role).", "service_role", resolved=True),
    SettingSpec("serviceRolePassword", STRING, "",
                "Password of serviceRole (secret); required on target postgres.",
                "service_role_password", secret=True),
    SettingSpec("vectorIndexMethod", STRING, "auto",
                "Vector index: auto picks hnsw sized by expectedRows (none above 4000 "
                "dimensions); none builds no ANN index.", "vector_index",
                choices=IndexMethod, resolved=True),
    SettingSpec("vectorIndexMeasure", STRING, "cosine",
                "Distance the vector index serves; mem0 always searches with cosine (<=>).",
                "vector_index", choices=IndexMeasure, resolved=True),
    SettingSpec("vectorIndexM", INTEGER, 0,
                "HNSW m (2..100); 0 lets the method choice decide.", "vector_index",
                minimum=0, maximum=100, resolved=True),
    SettingSpec("vectorIndexEfConstruction", INTEGER, 0,
                "HNSW ef_construction (4..1000, at least 2*m); 0 lets the method choice "
                "decide.", "vector_index", minimum=0, maximum=1000, resolved=True),
    SettingSpec("vectorIndexLists", INTEGER, 0,
                "IVFFlat lists (1..32768); 0 derives it from expectedRows.", "vector_index",
                minimum=0, maximum=MAX_LISTS, resolved=True),
    SettingSpec("expectedRows", INTEGER, 10000,
                "Expected number of memories; drives the auto index choice and ivfflat's "
                "lists.", "vector_index", minimum=0, maximum=10**12, resolved=True),
    SettingSpec("poolerUrl", STRING, "",
                "postgresql:// URL (secret) of the transaction-mode pooler the application "
                "connects through (Supavisor port 6543, PgBouncer); after each deployment the "
                "checks run mem0's statements through it. Empty: no pooler check.",
                "pooler_url", secret=True),
    SettingSpec("poolerPreparedStatements", BOOLEAN, False,
                "Whether the application keeps psycopg's server-side prepared statements "
                "through poolerUrl (false: it passes prepare_threshold=None, as a "
                "transaction-mode pooler needs); the pooler check runs the same way.",
                "pooler_prepared_statements"),
    SettingSpec("checksBenchmark", BOOLEAN, False,
                "Also run the benchmark (benchRows synthetic memories in a scratch schema) "
                "in the post-deploy checks, and fail the deployment over a threshold.",
                "checks_benchmark"),
    SettingSpec("benchRows", INTEGER, 10000,
                "Memories the benchmark loads into its scratch schema.", "bench.rows",
                minimum=100, maximum=10_000_000),
    SettingSpec("benchUsers", INTEGER, 100,
                "Users the benchmark's memories belong to (at most benchRows).",
                "bench.users", minimum=1, maximum=1_000_000),
    SettingSpec("benchInsertMs", INTEGER, 50,
                "Benchmark threshold: p95 of mem0's insert, in ms.", "bench.insert_ms",
                minimum=1, maximum=60_000),
    SettingSpec("benchSearchMs", INTEGER, 100,
                "Benchmark threshold: p95 of a user's vector search (mem0's LIMIT 80) in "
                "each user-size class, as the app role connects, in ms.", "bench.search_ms",
                minimum=1, maximum=60_000),
    SettingSpec("benchGetMs", INTEGER, 10,
                "Benchmark threshold: p95 of a get by id, in ms.", "bench.get_ms",
                minimum=1, maximum=60_000),
    SettingSpec("benchTraverseMs", INTEGER, 150,
                "Benchmark threshold: p95 of a 1- and a 2-hop graph traversal, in ms.",
                "bench.traverse_ms", minimum=1, maximum=60_000),
    SettingSpec("snapshotSchedule", STRING, "",
                "pg_cron schedule of the snapshot job: copies memories, entities and "
                "relationships into schema mem0_backup (a snapshot id and time per run) and "
                "purges snapshots older than snapshotRetentionDays. Empty: no job.",
                "jobs.snapshot_schedule", cron=True),
    SettingSpec("snapshotRetentionDays", INTEGER, 7,
                "Days the snapshot job keeps a snapshot.", "jobs.snapshot_retention_days",
                minimum=1, maximum=3650),
    SettingSpec("expiredPurgeSchedule", STRING, "",
                "pg_cron schedule of the job that deletes memories whose expiration_date "
                "(mem0's, YYYY-MM-DD in the payload) is before today (UTC). Empty: no job.",
                "jobs.expired_purge_schedule", cron=True),
    SettingSpec("sessionCleanupSchedule", STRING, "",
                "pg_cron schedule of the job that deletes the memories of sessions (run_id) "
                "with no change for sessionMaxAgeHours. Empty: no job.",
                "jobs.session_cleanup_schedule", cron=True),
    SettingSpec("sessionMaxAgeHours", INTEGER, 24,
                "Hours after its last change that a session's memories are deleted.",
                "jobs.session_max_age_hours", minimum=1, maximum=87600),
    SettingSpec("historyRetentionSchedule", STRING, "",
                "pg_cron schedule of the job that deletes memory_history rows older than "
                "historyRetentionDays. Empty: no job.", "jobs.history_retention_schedule",
                cron=True),
    SettingSpec("historyRetentionDays", INTEGER, 365,
                "Days memory_history keeps a row.", "jobs.history_retention_days",
                minimum=1, maximum=36500),
    SettingSpec("analyzeSchedule", STRING, "",
                "pg_cron schedule of ANALYZE on the memory tables (e.g. nightly: 0 4 * * *). "
                "Empty: no job.", "jobs.analyze_schedule", cron=True),
    SettingSpec("protect", BOOLEAN, False,
                "Pulumi protect on data-bearing resources (tables): no delete or replace. "
                "Always on for a stack named prod or with target supabase.",
                "protect"),
    SettingSpec("allowDataLoss", BOOLEAN, False,
                "Allow changes that destroy rows (dropping a table or column with data, a "
                "dimension change on a table with rows). Off: such changes are refused.",
                "allow_data_loss"),
    SettingSpec("lockTimeout", STRING, LOCK_TIMEOUT,
                "How long a deployment's DDL waits for a table lock before it fails (ms, s "
                "or min, 100ms to 10min); bounds how long mem0's queries queue behind it.",
                "lock_timeout"),
)
SPECS_BY_KEY = {s.key: s for s in SETTINGS}

# Each pg_cron job the model can declare, and the setting that schedules it (empty: off).
JOB_SETTINGS = {"snapshot": "snapshotSchedule", "expired-purge": "expiredPurgeSchedule",
                "session-cleanup": "sessionCleanupSchedule",
                "history-retention": "historyRetentionSchedule", "analyze": "analyzeSchedule"}

# The roles the postgres and embedded targets create besides appRole: key -> password key.
PROJECT_ROLE_KEYS: dict[str, str | None] = {
    "ownerRole": None, "readonlyRole": "readonlyRolePassword",
    "serviceRole": "serviceRolePassword"}
