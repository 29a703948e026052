"""The parsed settings: one frozen `Settings` and the groups it holds.

Every field but `stack` and `warnings` is filled from the declarations in `spec.py` (a
unit test keeps the two in step); other modules read these fields and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.settings.choices import (
    AppRoleIdentity,
    ClientProfile,
    IterativeScan,
    SslMode,
    Target,
    Tenancy,
)
from components.settings.spec import JOB_SETTINGS, SPECS_BY_KEY
from components.timeouts import LOCK_TIMEOUT
from components.vectorindex import VectorIndex, vector_column_type

__all__ = ["PROD_STACKS", "BenchThresholds", "LifecycleJobs", "Settings"]

# Stacks whose tables are always protected, whatever `protect` says.
PROD_STACKS = ("prod",)


@dataclass(frozen=True)
class BenchThresholds:
    """The benchmark's size and its p95 limits in ms (the seed's: 50/100/10/150)."""

    rows: int
    users: int
    insert_ms: int
    search_ms: int
    get_ms: int
    traverse_ms: int


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
        """The schedule of a job of JOB_SETTINGS: the field its setting declares."""
        field_name = SPECS_BY_KEY[JOB_SETTINGS[job]].field.removeprefix("jobs.")
        value: str | None = getattr(self, field_name)
        return value

    def scheduled(self) -> dict[str, str]:
        """Each scheduled job's setting key -> its schedule."""
        return {key: when for job, key in JOB_SETTINGS.items() if (when := self.schedule(job))}


@dataclass(frozen=True)
class Settings:
    """A stack's settings, valid as a whole; secrets are left out of the repr."""

    stack: str
    target: Target
    database_url: str | None = field(repr=False)
    database_url_encrypted: bool  # set in the stack file, but as a secure (encrypted) value
    embedded_data_dir: str
    ssl_mode: SslMode  # resolved: disable (embedded only) | require | verify-ca | verify-full
    ssl_root_cert: str  # absolute path of a PEM root certificate, or empty
    dimensions: int
    collection: str
    client_profile: ClientProfile
    app_role: str
    app_role_password: str | None = field(repr=False)
    hnsw_ef_search: int
    iterative_scan: IterativeScan  # resolved: relaxed_order | strict_order | off
    history_includes_vectors: bool
    fts_language: str
    tenancy: Tenancy
    shared_agent_knowledge: bool
    session_scope: bool
    app_role_identity: AppRoleIdentity
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
    # The provider's DDL sessions' lock_timeout; it reaches them through the stack config
    # (components/timeouts.py), so the checks' payload leaves it out.
    lock_timeout: str = LOCK_TIMEOUT
    # Defaults: the checks' payloads stored before these settings existed lack them.
    org_admins: bool = False
    agent_spaces: bool = False
    warnings: tuple[str, ...] = ()

    def role_password(self, role: str) -> str | None:
        """The secret password the stack sets for one of its LOGIN roles, if any."""
        return {self.app_role: self.app_role_password,
                self.readonly_role: self.readonly_role_password,
                self.service_role: self.service_role_password}.get(role) \
            if self.target != Target.SUPABASE or role == self.app_role else None

    @property
    def protects_data(self) -> bool:
        """Whether the data-bearing resources (tables) carry Pulumi's protect: when the
        stack asks (`protect`), and always on a stack named prod or with target supabase
        (the policy pack's protect-prod-and-supabase requires it)."""
        return self.protect or self.stack in PROD_STACKS or self.target == Target.SUPABASE

    @property
    def vector_column_type(self) -> str:
        """`vector`, or `halfvec` for an indexed stack above 2000 dimensions."""
        return vector_column_type(self.dimensions, self.vector_index.method)

    @property
    def extension_schema(self) -> str:
        """Supabase installs extensions in schema `extensions`; elsewhere they go to public."""
        return "extensions" if self.target == Target.SUPABASE else "public"
