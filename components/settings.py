"""Stack settings: the only place configuration is parsed and validated.

`SETTINGS` declares every key once (type, default, allowed values, description). The
Pulumi program, the CLI (which reads `Pulumi.<stack>.yaml` directly) and the tests all go
through `parse_settings`, which returns one frozen `Settings` or raises `SettingsError`
listing every invalid key with the value given and what is allowed. Nothing is applied
before settings parse.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from components.identifiers import identifier_problem
from components.schedule import ALLOWED as CRON_ALLOWED
from components.schedule import schedule_problem

PROJECT = "mem0infra"

TARGETS = ("embedded", "postgres", "supabase")
TENANCIES = ("user", "org", "service")
APP_ROLE_IDENTITIES = ("trusted", "optional", "required")
# The roles Supabase provides; on target supabase the stack uses them and creates none of
# its own but the app role. `postgres` owns what the dashboard and migrations create.
SUPABASE_OWNER, SUPABASE_SERVICE_ROLE = "postgres", "service_role"
SUPABASE_END_USER_ROLES = ("anon", "authenticated")
INDEX_METHODS = ("auto", "hnsw", "ivfflat", "none")
INDEX_MEASURES = ("cosine", "l2", "ip", "l1")
CLIENT_PROFILES = ("python", "typescript")
ITERATIVE_SCANS = ("auto", "relaxed_order", "strict_order", "off")
# PostgreSQL's built-in text search configurations (pg_ts_config in a fresh cluster).
TEXT_SEARCH_CONFIGS = (
    "arabic", "armenian", "basque", "catalan", "danish", "dutch", "english", "finnish",
    "french", "german", "greek", "hindi", "hungarian", "indonesian", "irish", "italian",
    "lithuanian", "nepali", "norwegian", "portuguese", "romanian", "russian", "serbian",
    "simple", "spanish", "swedish", "tamil", "turkish", "yiddish")
# mem0 2.2.1 asks for LIMIT max(top_k*4, 60): 80 with its default top_k of 20, and an
# HNSW scan returns at most ef_search rows (shared/reference/mem0-contract.md 4).
from components.mem0 import DEFAULT_SEARCH_LIMIT as MEM0_DEFAULT_LIMIT  # noqa: E402, I001
# The TypeScript SDK's match_vectors() reads a table hard-coded as `memories`.
TYPESCRIPT_TABLE = "memories"

# pgvector limits: vector columns accept up to 16000 dimensions; hnsw and ivfflat index
# at most 2000 of type vector (32-bit floats) and 4000 of type halfvec (16-bit floats,
# pgvector 0.7.0). An indexed stack with more than 2000 dimensions stores halfvec(N):
# mem0's `vector <=> %s::vector` then resolves to halfvec's operator through pgvector's
# implicit vector -> halfvec cast, and its searches use the halfvec index.
MAX_DIMENSIONS = 16000
MAX_INDEXED_DIMENSIONS = 2000
MAX_HALFVEC_INDEXED_DIMENSIONS = 4000
HALFVEC_PGVECTOR = "0.7.0"
# Longest suffix the model appends to the collection name (`<collection>_entities_...`),
# so every derived name stays within PostgreSQL's 63 characters.
MAX_COLLECTION_LENGTH = 40


class SettingsError(ValueError):
    """One or more settings are invalid; the message names each key, value and rule."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack settings ({len(problems)}):\n{lines}")


@dataclass(frozen=True)
class SettingSpec:
    key: str
    type: str  # "string" | "integer" | "boolean", as in Pulumi.yaml's config schema
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    secret: bool = False
    minimum: int | None = None
    maximum: int | None = None
    cron: bool = False  # a pg_cron schedule (components.schedule); empty turns its job off


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("target", "string", "embedded",
                "Where the schema goes: a local embedded PostgreSQL (dev), any PostgreSQL "
                "with pgvector, or Supabase.", choices=TARGETS),
    SettingSpec("databaseUrl", "string", "",
                "Connection URL (postgresql://...) of the deploying role. Secret. Required "
                "unless target is embedded.", secret=True),
    SettingSpec("embeddedDataDir", "string", "",
                "Data directory of the embedded server; empty means .pgdata/<stack>."),
    SettingSpec("dimensions", "integer", 1536,
                "Embedding dimensions (vector(N); halfvec(N), half precision, above 2000 with "
                "an hnsw or ivfflat index); equals mem0's embedding_model_dims.",
                minimum=1, maximum=MAX_DIMENSIONS),
    SettingSpec("collection", "string", "memories",
                "Table name of the memories (mem0's collection_name), in schema public."),
    SettingSpec("clientProfile", "string", "python",
                "Which mem0 SDK the tables serve: python (the pgvector provider's "
                "id/vector/payload layout, with history trigger and graph) or typescript "
                "(the TS Supabase store's memories/match_vectors/memory_history contract).",
                choices=CLIENT_PROFILES),
    SettingSpec("appRole", "string", "mem0_app",
                "The role mem0 connects as: LOGIN, DML on the memory tables only, with the "
                "search settings below. Created by the stack unless it exists."),
    SettingSpec("appRolePassword", "string", "",
                "Password of appRole. Secret. Required unless target is embedded; sent to "
                "the server only as a SCRAM verifier.", secret=True),
    SettingSpec("hnswEfSearch", "integer", 200,
                "hnsw.ef_search for appRole: at least mem0's LIMIT of 80, or searches "
                "silently return fewer rows; 200 keeps recall@10 of a user's filtered "
                "search at 0.99.", minimum=MEM0_DEFAULT_LIMIT, maximum=1000),
    SettingSpec("iterativeScan", "string", "auto",
                "hnsw.iterative_scan for appRole (pgvector >= 0.8), so filtered searches "
                "return full pages; auto means relaxed_order, except off on embedded "
                "(its pgvector is 0.6).", choices=ITERATIVE_SCANS),
    SettingSpec("historyIncludesVectors", "boolean", False,
                "Keep the embedding in memory_history's old_value/new_value (large)."),
    SettingSpec("ftsLanguage", "string", "",
                "Text search configuration of the optional full-text index on the memory "
                "text (the seed's FTS index, e.g. english); empty builds none.",
                choices=("", *TEXT_SEARCH_CONFIGS)),
    SettingSpec("tenancy", "string", "user",
                "Who may see which rows (row-level security): each user their own, the "
                "members of an organisation its rows (org_id), or no end user at all "
                "(service).", choices=TENANCIES),
    SettingSpec("sharedAgentKnowledge", "boolean", False,
                "Rows with an agent_id and no user_id are readable by every signed-in "
                "user; only the service role writes them."),
    SettingSpec("sessionScope", "boolean", False,
                "Rows with a run_id are visible only to a caller whose session "
                "(mem0.run_id, or the JWT claim run_id) names that run."),
    SettingSpec("appRoleIdentity", "string", "trusted",
                "trusted: appRole reads and writes every row, and mem0's own filters "
                "separate users (its policy is `true`, so every mem0 search can use an "
                "index); required: appRole sees only the rows of the mem0.user_id its "
                "connection sets; optional: every row until the connection sets "
                "mem0.user_id (the planner cannot see through this rule: every mem0 search "
                "is a sequential scan).",
                choices=APP_ROLE_IDENTITIES),
    SettingSpec("ownerRole", "string", "mem0_owner",
                "NOLOGIN role that owns every object (not on supabase, where postgres "
                "owns them). The deploying role must be a superuser or a member of it."),
    SettingSpec("readonlyRole", "string", "mem0_readonly",
                "LOGIN role for dashboards and analysts: SELECT under row-level security "
                "(not on supabase)."),
    SettingSpec("readonlyRolePassword", "string", "",
                "Password of readonlyRole. Secret. Required on target postgres.",
                secret=True),
    SettingSpec("serviceRole", "string", "mem0_service",
                "LOGIN BYPASSRLS role for backup, restore and migration: every row (on "
                "supabase: Supabase's service_role)."),
    SettingSpec("serviceRolePassword", "string", "",
                "Password of serviceRole. Secret. Required on target postgres.", secret=True),
    SettingSpec("vectorIndexMethod", "string", "auto",
                "Vector index: auto picks by expectedRows; none builds no ANN index.",
                choices=INDEX_METHODS),
    SettingSpec("vectorIndexMeasure", "string", "cosine",
                "Distance the vector index serves; mem0 always searches with cosine (<=>).",
                choices=INDEX_MEASURES),
    SettingSpec("vectorIndexM", "integer", 0,
                "HNSW m (2..100); 0 lets the method choice decide.", minimum=0, maximum=100),
    SettingSpec("vectorIndexEfConstruction", "integer", 0,
                "HNSW ef_construction (4..1000, at least 2*m); 0 lets the method choice "
                "decide.", minimum=0, maximum=1000),
    SettingSpec("vectorIndexLists", "integer", 0,
                "IVFFlat lists (1..32768); 0 derives it from expectedRows.",
                minimum=0, maximum=32768),
    SettingSpec("expectedRows", "integer", 10000,
                "Expected number of memories; drives the auto index choice.",
                minimum=0, maximum=10**12),
    SettingSpec("poolerUrl", "string", "",
                "postgresql:// URL of the transaction-mode pooler the application connects "
                "through (Supavisor port 6543, PgBouncer); after each deployment the checks "
                "run mem0's statements through it. Secret. Empty: no pooler check.",
                secret=True),
    SettingSpec("poolerPreparedStatements", "boolean", False,
                "Whether the application keeps psycopg's server-side prepared statements "
                "through poolerUrl (false: it passes prepare_threshold=None, as a "
                "transaction-mode pooler needs); the pooler check runs the same way."),
    SettingSpec("checksBenchmark", "boolean", False,
                "Also run the benchmark (benchRows synthetic memories in a scratch schema) "
                "in the post-deploy checks, and fail the deployment over a threshold."),
    SettingSpec("benchRows", "integer", 10000,
                "Memories the benchmark loads into its scratch schema.",
                minimum=100, maximum=10_000_000),
    SettingSpec("benchUsers", "integer", 100,
                "Users the benchmark's memories belong to (at most benchRows).",
                minimum=1, maximum=1_000_000),
    SettingSpec("benchInsertMs", "integer", 50,
                "Benchmark threshold: p95 of mem0's insert, in ms.", minimum=1, maximum=60_000),
    SettingSpec("benchSearchMs", "integer", 100,
                "Benchmark threshold: p95 of a user's vector search (mem0's LIMIT 80) in "
                "each user-size class, as the app role connects, in ms.",
                minimum=1, maximum=60_000),
    SettingSpec("benchGetMs", "integer", 10,
                "Benchmark threshold: p95 of a get by id, in ms.", minimum=1, maximum=60_000),
    SettingSpec("benchTraverseMs", "integer", 150,
                "Benchmark threshold: p95 of a 1- and a 2-hop graph traversal, in ms.",
                minimum=1, maximum=60_000),
    SettingSpec("snapshotSchedule", "string", "",
                "pg_cron schedule of the snapshot job: copies memories, entities and "
                "relationships into schema mem0_backup (a snapshot id and time per run) and "
                "purges snapshots older than snapshotRetentionDays. Empty: no job.",
                cron=True),
    SettingSpec("snapshotRetentionDays", "integer", 7,
                "Days the snapshot job keeps a snapshot.", minimum=1, maximum=3650),
    SettingSpec("expiredPurgeSchedule", "string", "",
                "pg_cron schedule of the job that deletes memories whose expiration_date "
                "(mem0's, YYYY-MM-DD in the payload) is before today (UTC). Empty: no job.",
                cron=True),
    SettingSpec("sessionCleanupSchedule", "string", "",
                "pg_cron schedule of the job that deletes the memories of sessions (run_id) "
                "with no change for sessionMaxAgeHours. Empty: no job.", cron=True),
    SettingSpec("sessionMaxAgeHours", "integer", 24,
                "Hours after its last change that a session's memories are deleted.",
                minimum=1, maximum=87600),
    SettingSpec("historyRetentionSchedule", "string", "",
                "pg_cron schedule of the job that deletes memory_history rows older than "
                "historyRetentionDays. Empty: no job.", cron=True),
    SettingSpec("historyRetentionDays", "integer", 365,
                "Days memory_history keeps a row.", minimum=1, maximum=36500),
    SettingSpec("analyzeSchedule", "string", "",
                "pg_cron schedule of ANALYZE on the memory tables (e.g. nightly: 0 4 * * *). "
                "Empty: no job.", cron=True),
    SettingSpec("protect", "boolean", False,
                "Pulumi protect on data-bearing resources (tables): no delete or replace."),
    SettingSpec("allowDataLoss", "boolean", False,
                "Allow changes that destroy rows (dropping a table or column with data, a "
                "dimension change on a table with rows). Off: such changes are refused."),
)
SPECS_BY_KEY = {s.key: s for s in SETTINGS}


@dataclass(frozen=True)
class VectorIndex:
    """The vector index after `auto` is resolved; `declared_method` keeps what was asked."""

    declared_method: str
    method: str  # hnsw | ivfflat | none
    measure: str
    m: int
    ef_construction: int
    lists: int
    expected_rows: int
    reason: str  # one line saying why this method and these parameters

    @property
    def opclass(self) -> str:
        return self.opclass_for("vector")

    def opclass_for(self, column_type: str) -> str:
        """pgvector's operator class of the measure for `vector` or `halfvec` columns."""
        return f"{column_type}_{self.measure}_ops"


def vector_column_type(dimensions: int, method: str) -> str:
    """pgvector's type of the embedding columns: halfvec when an hnsw or ivfflat index must
    cover more than MAX_INDEXED_DIMENSIONS (pgvector indexes no more of type vector), else
    vector. A stack without an index keeps full precision at any size."""
    return "halfvec" if method in ("hnsw", "ivfflat") and \
        dimensions > MAX_INDEXED_DIMENSIONS else "vector"


@dataclass(frozen=True)
class BenchThresholds:
    """The benchmark's size and its p95 limits in ms (the seed's: 50/100/10/150)."""

    rows: int
    users: int
    insert_ms: int
    search_ms: int
    get_ms: int
    traverse_ms: int


# Each pg_cron job the model can declare, and the setting that schedules it (empty: off).
JOB_SETTINGS = {"snapshot": "snapshotSchedule", "expired-purge": "expiredPurgeSchedule",
                "session-cleanup": "sessionCleanupSchedule",
                "history-retention": "historyRetentionSchedule", "analyze": "analyzeSchedule"}


@dataclass(frozen=True)
class LifecycleJobs:
    """The pg_cron jobs' schedules (None: the job is off) and what they keep."""

    snapshot_schedule: str | None
    snapshot_retention_days: int
    expired_purge_schedule: str | None
    session_cleanup_schedule: str | None
    session_max_age_hours: int
    history_retention_schedule: str | None
    history_retention_days: int
    analyze_schedule: str | None

    def schedule(self, job: str) -> str | None:
        """The schedule of a job of JOB_SETTINGS (its field is the setting in snake case)."""
        field_name = re.sub(r"(?<!^)(?=[A-Z])", "_", JOB_SETTINGS[job]).lower()
        return getattr(self, field_name)  # type: ignore[no-any-return]

    def scheduled(self) -> dict[str, str]:
        """Each scheduled job's setting key -> its schedule."""
        return {key: when for job, key in JOB_SETTINGS.items() if (when := self.schedule(job))}


@dataclass(frozen=True)
class Settings:
    stack: str
    target: str
    database_url: str | None = field(repr=False)
    database_url_encrypted: bool  # set in the stack file, but as a secure (encrypted) value
    embedded_data_dir: str
    dimensions: int
    collection: str
    client_profile: str
    app_role: str
    app_role_password: str | None = field(repr=False)
    hnsw_ef_search: int
    iterative_scan: str  # resolved: relaxed_order | strict_order | off
    history_includes_vectors: bool
    fts_language: str
    tenancy: str  # user | org | service
    shared_agent_knowledge: bool
    session_scope: bool
    app_role_identity: str  # trusted | optional | required
    owner_role: str  # owns every object; on supabase, `postgres`
    readonly_role: str | None  # None on supabase
    readonly_role_password: str | None = field(repr=False)
    service_role: str  # bypasses RLS; on supabase, Supabase's `service_role`
    service_role_password: str | None = field(repr=False)
    vector_index: VectorIndex
    pooler_url: str | None = field(repr=False)
    pooler_prepared_statements: bool
    checks_benchmark: bool
    bench: BenchThresholds
    jobs: LifecycleJobs
    protect: bool
    allow_data_loss: bool
    warnings: tuple[str, ...] = ()

    def role_password(self, role: str) -> str | None:
        """The secret password the stack sets for one of its LOGIN roles, if any."""
        return {self.app_role: self.app_role_password,
                self.readonly_role: self.readonly_role_password,
                self.service_role: self.service_role_password}.get(role) \
            if self.target != "supabase" or role == self.app_role else None

    @property
    def vector_column_type(self) -> str:
        """`vector`, or `halfvec` for an indexed stack above 2000 dimensions."""
        return vector_column_type(self.dimensions, self.vector_index.method)

    @property
    def extension_schema(self) -> str:
        """Supabase installs extensions in schema `extensions`; elsewhere they go to public."""
        return "extensions" if self.target == "supabase" else "public"


class EncryptedValue:
    """A `secure:` value read from a stack file without the passphrase to decrypt it."""

    def __repr__(self) -> str:
        return "<encrypted>"


def _describe(value: object) -> str:
    return repr(value)


def _coerce(spec: SettingSpec, value: object, problems: list[str]) -> Any:
    """Turn a raw config value (native YAML or Pulumi's strings) into the declared type."""
    if spec.type == "integer":
        if isinstance(value, bool):
            ok = False
        elif isinstance(value, int):
            return value
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value.strip())
        else:
            ok = False
        if not ok:
            problems.append(f"{spec.key}: {_describe(value)} is not an integer; {_allowed(spec)}")
            return None
    if spec.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        problems.append(f"{spec.key}: {_describe(value)} is not allowed; use true or false")
        return None
    if not isinstance(value, str):
        problems.append(f"{spec.key}: {_describe(value)} is not allowed; {_allowed(spec)}")
        return None
    return value


def _allowed(spec: SettingSpec) -> str:
    if spec.choices:
        return "allowed: " + ", ".join(c or "(empty)" for c in spec.choices)
    if spec.type == "integer":
        return f"allowed: an integer from {spec.minimum} to {spec.maximum}"
    return "allowed: a string"


def _valid_choice(spec: SettingSpec, value: Any, problems: list[str]) -> bool:
    if spec.choices and value not in spec.choices:
        problems.append(f"{spec.key}: {_describe(value)} is not allowed; {_allowed(spec)}")
        return False
    if spec.type == "integer" and not (spec.minimum <= value <= spec.maximum):  # type: ignore[operator]
        problems.append(f"{spec.key}: {value} is not allowed; {_allowed(spec)}")
        return False
    return True


def _redacted_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        return f"{parts.scheme}://...@{host}" if parts.scheme else "<not a URL>"
    except ValueError:
        return "<not a URL>"


def _check_database_url(target: str, url: object, problems: list[str]) -> None:
    if isinstance(url, EncryptedValue):
        return
    if not url:
        if target != "embedded":
            problems.append(
                f"databaseUrl: not set, but target is {target!r}; set it with "
                "`pulumi config set --secret databaseUrl postgresql://USER:PASSWORD@HOST:5432/DB`"
                " (allowed: a postgresql:// or postgres:// URL)"
            )
        return
    assert isinstance(url, str)
    if urlsplit(url).scheme not in ("postgresql", "postgres"):
        problems.append(
            f"databaseUrl: {_redacted_url(url)} is not allowed; allowed: a postgresql:// or "
            "postgres:// URL (value redacted: it is a secret)"
        )


def _missing_password(key: str, target: str) -> str:
    return (f"{key}: not set, but target is {target!r}; set it with "
            f"`pulumi config set --secret {key} \"$(openssl rand -base64 32)\"` "
            "(allowed: a non-empty string)")


# The roles the postgres and embedded targets create besides appRole: key -> password key.
PROJECT_ROLE_KEYS: dict[str, str | None] = {
    "ownerRole": None, "readonlyRole": "readonlyRolePassword",
    "serviceRole": "serviceRolePassword"}


def _check_roles(raw: Mapping[str, object], values: Mapping[str, Any],
                 problems: list[str]) -> None:
    """Role names are distinct identifiers; passwords are there where the target needs
    them; on supabase, the project's own roles other than appRole are not used."""
    target = values["target"]
    if target not in TARGETS:
        return
    if target != "embedded" and not values["appRolePassword"]:
        problems.append(_missing_password("appRolePassword", target))
    names: dict[str, object] = {"appRole": values["appRole"]}
    for key, password_key in PROJECT_ROLE_KEYS.items():
        if target == "supabase":
            for given in (key, password_key):
                # The Pulumi CLI hands the program Pulumi.yaml's default for every key a
                # stack leaves unset, so the default means "not set" here.
                if given and raw.get(given) not in (None, "", SPECS_BY_KEY[given].default):
                    problems.append(
                        f"{given}: not allowed with target 'supabase'; remove it (Supabase's "
                        f"own roles serve: {SUPABASE_OWNER} owns the objects, "
                        f"{SUPABASE_SERVICE_ROLE} bypasses row-level security, anon and "
                        "authenticated are its end users)")
            continue
        names[key] = values[key]
        if password_key and target == "postgres" and not values[password_key]:
            problems.append(_missing_password(password_key, target))
    seen: dict[str, str] = {}
    for key, name in names.items():
        if not isinstance(name, str):
            continue
        why = identifier_problem(name)
        if why:
            problems.append(f"{key}: {name!r} is not allowed; it {why}")
        elif name in seen:
            problems.append(f"{key}: {name!r} is not allowed; it is already {seen[name]} "
                            "(each role has one job)")
        elif name in (SUPABASE_OWNER, SUPABASE_SERVICE_ROLE, *SUPABASE_END_USER_ROLES):
            problems.append(f"{key}: {name!r} is not allowed; it is a name Supabase and "
                            "PostgreSQL use for their own roles")
        elif name.startswith("pg_") or name == "public":
            problems.append(f"{key}: {name!r} is not allowed; PostgreSQL reserves role names "
                            "starting with pg_, and public means every role")
        seen[name] = key


def _resolve_iterative_scan(values: Mapping[str, Any], problems: list[str]) -> str | None:
    declared, target = values["iterativeScan"], values["target"]
    if declared is None or target not in TARGETS:
        return None
    if declared == "auto":
        return "off" if target == "embedded" else "relaxed_order"
    if declared != "off" and target == "embedded":
        problems.append(
            f"iterativeScan: {declared!r} is not allowed with target 'embedded'; allowed: "
            "auto, off (the embedded server bundles pgvector 0.6, and iterative scans need "
            "pgvector 0.8 or later)")
        return None
    return declared


def _resolve_vector_index(values: Mapping[str, Any], problems: list[str]) -> VectorIndex | None:
    """Resolve `auto` with the seed's sizing guide; explicit parameters always win."""
    declared = values["vectorIndexMethod"]
    measure = values["vectorIndexMeasure"]
    rows = values["expectedRows"]
    if declared not in INDEX_METHODS or measure not in INDEX_MEASURES or rows is None:
        return None
    dims = values["dimensions"]
    if declared == "auto":
        method = "hnsw"
        if rows < 100_000:
            auto_m, auto_efc, why = 16, 64, "under 100K rows: hnsw m=16, ef_construction=64"
        elif rows <= 1_000_000:
            auto_m, auto_efc, why = 16, 64, "100K to 1M rows: hnsw m=16, ef_construction=64"
        else:
            auto_m, auto_efc, why = 32, 128, "over 1M rows: hnsw m=32, ef_construction=128"
        reason = f"vectorIndexMethod=auto with expectedRows={rows} ({why})"
    else:
        method, auto_m, auto_efc = declared, 16, 64
        reason = f"vectorIndexMethod={declared}"
    if values["vectorIndexM"] is None or values["vectorIndexEfConstruction"] is None:
        return None  # already reported
    m = values["vectorIndexM"] or auto_m
    efc = values["vectorIndexEfConstruction"] or auto_efc
    # pgvector's guidance for ivfflat: rows / 1000 up to 1M rows, sqrt(rows) above.
    auto_lists = max(1, rows // 1000) if rows <= 1_000_000 else max(1, math.isqrt(rows))
    lists = values["vectorIndexLists"] or min(auto_lists, 32768)  # None was reported
    if declared == "auto" and isinstance(dims, int) and dims > MAX_HALFVEC_INDEXED_DIMENSIONS:
        method = "none"
        reason = (f"vectorIndexMethod=auto with dimensions={dims}: no index, since pgvector's "
                  f"hnsw and ivfflat index at most {MAX_HALFVEC_INDEXED_DIMENSIONS} dimensions "
                  "(as halfvec)")
    if method == "hnsw":
        if m < 2:
            problems.append(f"vectorIndexM: {m} is not allowed; allowed: 2 to 100 (0 = auto)")
        if efc < 4:
            problems.append(
                f"vectorIndexEfConstruction: {efc} is not allowed; allowed: 4 to 1000 (0 = auto)")
        elif efc < 2 * m:
            problems.append(
                f"vectorIndexEfConstruction: {efc} is not allowed; allowed: at least "
                f"2 * vectorIndexM = {2 * m} (pgvector's rule)")
    if method == "ivfflat" and measure == "l1":
        problems.append(
            "vectorIndexMeasure: 'l1' is not allowed with vectorIndexMethod 'ivfflat'; "
            "allowed: cosine, l2, ip (pgvector's ivfflat has no l1 operator class)")
    return VectorIndex(declared, method, measure, m, efc, lists, rows, reason)


def parse_settings(raw: Mapping[str, object], stack: str) -> Settings:
    """Validate raw config values (keys without the project prefix) into Settings."""
    problems: list[str] = []
    unknown = sorted(set(raw) - set(SPECS_BY_KEY))
    for key in unknown:
        problems.append(
            f"{key}: unknown setting; allowed keys: {', '.join(s.key for s in SETTINGS)}")
    values: dict[str, Any] = {}
    for spec in SETTINGS:
        value = raw.get(spec.key)
        if value is None:
            values[spec.key] = spec.default
            continue
        if spec.secret and isinstance(value, EncryptedValue):
            values[spec.key] = value
            continue
        coerced = _coerce(spec, value, problems)
        # An invalid value is reported once; rules that build on it then see None.
        values[spec.key] = coerced if coerced is not None and _valid_choice(
            spec, coerced, problems) else None

    collection = values["collection"]
    if isinstance(collection, str):
        why = identifier_problem(collection, MAX_COLLECTION_LENGTH)
        if why:
            problems.append(f"collection: {collection!r} is not allowed; it {why}")
    if (values["clientProfile"] == "typescript" and isinstance(collection, str)
            and collection != TYPESCRIPT_TABLE):
        problems.append(
            f"collection: {collection!r} is not allowed with clientProfile 'typescript'; "
            f"allowed: {TYPESCRIPT_TABLE!r} (the TS SDK's match_vectors() reads that table)")
    app_role = values["appRole"]
    if values["target"] in TARGETS:
        _check_database_url(values["target"], values["databaseUrl"], problems)
    _check_roles(raw, values, problems)
    iterative_scan = _resolve_iterative_scan(values, problems)
    index = _resolve_vector_index(values, problems)
    dims = values["dimensions"]
    warnings: list[str] = []
    if index is not None and isinstance(dims, int):
        if index.method in ("hnsw", "ivfflat") and dims > MAX_HALFVEC_INDEXED_DIMENSIONS:
            problems.append(
                f"dimensions: {dims} is not allowed with a {index.method} index "
                f"({index.reason}); allowed: 1 to {MAX_HALFVEC_INDEXED_DIMENSIONS} (pgvector "
                f"indexes at most {MAX_INDEXED_DIMENSIONS} dimensions of type vector and "
                f"{MAX_HALFVEC_INDEXED_DIMENSIONS} of type halfvec, which the stack stores above "
                f"{MAX_INDEXED_DIMENSIONS}), or set vectorIndexMethod to none")
        elif (index.method in ("hnsw", "ivfflat") and dims > MAX_INDEXED_DIMENSIONS
              and values["target"] == "embedded"):
            problems.append(
                f"dimensions: {dims} is not allowed with a {index.method} index "
                f"({index.reason}) on target 'embedded'; allowed: 1 to "
                f"{MAX_INDEXED_DIMENSIONS}, or set vectorIndexMethod to none (above "
                f"{MAX_INDEXED_DIMENSIONS} dimensions the stack indexes halfvec columns, which "
                f"need pgvector {HALFVEC_PGVECTOR} or later; the embedded server bundles "
                "pgvector 0.6)")
        if index.declared_method == "auto" and index.method == "none":
            warnings.append(
                f"dimensions is {dims}: more than pgvector can index (at most "
                f"{MAX_HALFVEC_INDEXED_DIMENSIONS}, as halfvec), so the stack builds no vector "
                "index and every mem0 search reads all rows; set vectorIndexMethod to none to "
                "say so, or use an embedder with fewer dimensions (text-embedding-3 models "
                "take a `dimensions` parameter)")
        if index.method != "none" and index.measure != "cosine":
            warnings.append(
                f"vectorIndexMeasure is {index.measure!r}, but mem0 always searches with cosine "
                "distance (<=>): mem0's searches will not use this index")
    pooler = values["poolerUrl"]
    if isinstance(pooler, str) and pooler and urlsplit(pooler).scheme not in (
            "postgresql", "postgres"):
        problems.append(f"poolerUrl: {_redacted_url(pooler)} is not allowed; allowed: a "
                        "postgresql:// or postgres:// URL, or empty (value redacted: it is a "
                        "secret)")
    rows, users = values["benchRows"], values["benchUsers"]
    if isinstance(rows, int) and isinstance(users, int) and users > rows:
        problems.append(f"benchUsers: {users} is not allowed with benchRows {rows}; allowed: "
                        f"1 to {rows} (every user needs a memory)")
    _check_schedules(values, problems)
    if values["target"] == "embedded" and values["protect"] is True:
        warnings.append("protect is on for an embedded (local, disposable) database")
    if values["appRoleIdentity"] == "optional":
        warnings.append("appRoleIdentity optional: the planner cannot see through its rule, so "
                        "mem0's searches are sequential scans, or (prepared) filtered HNSW "
                        "scans that return short pages for small users; use trusted (the "
                        "default) or required (docs/performance.md)")
    if problems:
        raise SettingsError(problems)

    url = values["databaseUrl"]
    password = values["appRolePassword"]
    supabase = values["target"] == "supabase"
    data_dir = values["embeddedDataDir"] or f".pgdata/{stack}"
    return Settings(
        stack=stack,
        target=values["target"],
        database_url=url if isinstance(url, str) and url else None,
        database_url_encrypted=isinstance(url, EncryptedValue),
        embedded_data_dir=data_dir,
        dimensions=dims,
        collection=collection,
        client_profile=values["clientProfile"],
        app_role=app_role,
        app_role_password=password if isinstance(password, str) and password else None,
        hnsw_ef_search=values["hnswEfSearch"],
        iterative_scan=iterative_scan,  # type: ignore[arg-type]
        history_includes_vectors=values["historyIncludesVectors"],
        fts_language=values["ftsLanguage"],
        tenancy=values["tenancy"],
        shared_agent_knowledge=values["sharedAgentKnowledge"],
        session_scope=values["sessionScope"],
        app_role_identity=values["appRoleIdentity"],
        owner_role=SUPABASE_OWNER if supabase else values["ownerRole"],
        readonly_role=None if supabase else values["readonlyRole"],
        readonly_role_password=_secret(values["readonlyRolePassword"]),
        service_role=SUPABASE_SERVICE_ROLE if supabase else values["serviceRole"],
        service_role_password=_secret(values["serviceRolePassword"]),
        vector_index=index,  # type: ignore[arg-type]
        pooler_url=_secret(values["poolerUrl"]),
        pooler_prepared_statements=values["poolerPreparedStatements"],
        checks_benchmark=values["checksBenchmark"],
        bench=BenchThresholds(values["benchRows"], values["benchUsers"],
                              values["benchInsertMs"], values["benchSearchMs"],
                              values["benchGetMs"], values["benchTraverseMs"]),
        jobs=LifecycleJobs(
            snapshot_schedule=_schedule(values["snapshotSchedule"]),
            snapshot_retention_days=values["snapshotRetentionDays"],
            expired_purge_schedule=_schedule(values["expiredPurgeSchedule"]),
            session_cleanup_schedule=_schedule(values["sessionCleanupSchedule"]),
            session_max_age_hours=values["sessionMaxAgeHours"],
            history_retention_schedule=_schedule(values["historyRetentionSchedule"]),
            history_retention_days=values["historyRetentionDays"],
            analyze_schedule=_schedule(values["analyzeSchedule"])),
        protect=values["protect"],
        allow_data_loss=values["allowDataLoss"],
        warnings=tuple(warnings),
    )


def _check_schedules(values: Mapping[str, Any], problems: list[str]) -> None:
    """Each job's schedule is one pg_cron takes; jobs serve the python profile's tables."""
    for spec in SETTINGS:
        schedule = values[spec.key]
        if not spec.cron or not isinstance(schedule, str) or not schedule.strip():
            continue
        why = schedule_problem(schedule)
        if why:
            problems.append(f"{spec.key}: {schedule!r} is not allowed ({why}); allowed: "
                            f"{CRON_ALLOWED}, or empty for no job")
        elif values["clientProfile"] == "typescript":
            problems.append(f"{spec.key}: not allowed with clientProfile 'typescript'; "
                            "allowed: empty (the jobs keep the python profile's tables)")


def _schedule(value: object) -> str | None:
    return " ".join(value.split()) if isinstance(value, str) and value.strip() else None


def _secret(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def settings_from_pulumi_config(getter: Callable[[str], str | None], all_keys: list[str],
                                stack: str, is_secret: Callable[[str], bool]) -> Settings:
    """Parse from Pulumi's config: `getter(key)` returns the raw string or None.

    `all_keys` are every `mem0infra:`-namespaced key the stack sets, so a typo is
    reported instead of ignored. `is_secret(key)` tells whether the engine holds the key
    encrypted: a secret setting given in plain text is refused (Pulumi's typed config
    cannot say so itself, docs/engine.md).
    """
    raw: dict[str, object] = {}
    for key in all_keys:
        value = getter(key)
        if value is not None:
            raw[key] = value
    plaintext = [
        f"{spec.key}: stored in plain text in Pulumi.{stack}.yaml, but it is a secret; "
        f"allowed: an encrypted value (pulumi config set --secret {spec.key} VALUE)"
        for spec in SETTINGS if spec.secret and raw.get(spec.key) and not is_secret(spec.key)]
    try:
        settings = parse_settings(raw, stack)
    except SettingsError as exc:
        raise SettingsError(plaintext + exc.problems) from None
    if plaintext:
        raise SettingsError(plaintext)
    return settings


# Settings fields that hold secrets: never part of a payload (they travel as secrets).
SECRET_FIELDS = ("database_url", "app_role_password", "readonly_role_password",
                 "service_role_password", "pooler_url")


def settings_payload(settings: Settings) -> dict[str, Any]:
    """Settings as plain data without its secrets: what a resource input can carry to the
    checks' provider, which rebuilds them with `settings_from_payload`."""
    payload = asdict(settings)
    for name in SECRET_FIELDS:
        payload.pop(name)
    payload["warnings"] = list(settings.warnings)
    return payload


def _typed(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    # Pulumi's wire format carries numbers as doubles (integers come back as 16.0), and
    # drops the keys whose value is None.
    return {f.name: int(values[f.name]) if f.type == "int" else values.get(f.name)
            for f in fields(cls) if f.name in values or "None" in str(f.type)}


def settings_from_payload(payload: Mapping[str, Any], **secrets: str | None) -> Settings:
    values = _typed(Settings, payload)
    values["vector_index"] = VectorIndex(**_typed(VectorIndex, payload["vector_index"]))
    values["bench"] = BenchThresholds(**_typed(BenchThresholds, payload["bench"]))
    values["jobs"] = LifecycleJobs(**_typed(LifecycleJobs, payload["jobs"]))
    values["warnings"] = tuple(payload.get("warnings") or ())
    for name in SECRET_FIELDS:
        values[name] = secrets.get(name)
    return Settings(**values)


def settings_table_markdown() -> str:
    """The README's table of stack settings (tests/unit/test_project_files.py keeps the two
    in step)."""

    def default(spec: SettingSpec) -> str:
        if spec.type == "boolean":
            return "`true`" if spec.default else "`false`"
        return "(empty)" if spec.default == "" else f"`{spec.default}`"

    def allowed(spec: SettingSpec) -> str:
        if spec.choices:
            return ", ".join(f"`{c}`" if c else "(empty)" for c in spec.choices)
        if spec.type == "integer":
            return f"{spec.minimum}..{spec.maximum}"
        return "`true`, `false`" if spec.type == "boolean" else "string"

    rows = ["| key | type | default | allowed | what it does |", "|---|---|---|---|---|"]
    for spec in SETTINGS:
        kind = spec.type + (" (secret)" if spec.secret else "")
        rows.append(f"| `{spec.key}` | {kind} | {default(spec)} | {allowed(spec)} | "
                    f"{spec.description} |")
    return "\n".join(rows)
