"""The closed sets a setting chooses from, as `Choice` enums, and their tuples.

Settings fields hold the members (each equals its string). The tuples (`TARGETS`, ...)
are the same sets as plain strings, in the order messages list them, for the modules that
import them. The vector index's sets live with it in `components.vectorindex`.
"""

from __future__ import annotations

from components.choice import Choice
from components.vectorindex import IndexMeasure, IndexMethod

__all__ = [
    "APP_ROLE_IDENTITIES",
    "CLIENT_PROFILES",
    "INDEX_MEASURES",
    "INDEX_METHODS",
    "ITERATIVE_SCANS",
    "SSL_MODES",
    "TARGETS",
    "TENANCIES",
    "TEXT_SEARCH_CONFIGS",
    "AppRoleIdentity",
    "ClientProfile",
    "IterativeScan",
    "SslMode",
    "Target",
    "Tenancy",
]


class Target(Choice):
    """`target`: where the schema goes."""

    EMBEDDED = "embedded"  # pgserver's local PostgreSQL 16 (pgvector 0.6.2, no pg_cron)
    POSTGRES = "postgres"
    SUPABASE = "supabase"


class Tenancy(Choice):
    """`tenancy`: whose rows a caller sees under row-level security."""

    USER = "user"
    ORG = "org"
    SERVICE = "service"


class AppRoleIdentity(Choice):
    """`appRoleIdentity`: what the app role's policy demands of its connections."""

    TRUSTED = "trusted"
    OPTIONAL = "optional"
    REQUIRED = "required"


class ClientProfile(Choice):
    """`clientProfile`: which mem0 SDK's table contract the stack deploys."""

    PYTHON = "python"
    TYPESCRIPT = "typescript"


class IterativeScan(Choice):
    """`iterativeScan`: pgvector's hnsw.iterative_scan; `auto` is resolved by target."""

    AUTO = "auto"
    RELAXED_ORDER = "relaxed_order"
    STRICT_ORDER = "strict_order"
    OFF = "off"


class SslMode(Choice):
    """`sslMode`: libpq's sslmode for every connection of the stack; `auto` is resolved
    by target (require, or disable on embedded: a local socket without TLS). Members are
    ordered weakest first (`SSL_STRENGTH`)."""

    AUTO = "auto"
    DISABLE = "disable"
    REQUIRE = "require"
    VERIFY_CA = "verify-ca"
    VERIFY_FULL = "verify-full"


TARGETS = Target.values()
TENANCIES = Tenancy.values()
APP_ROLE_IDENTITIES = AppRoleIdentity.values()
INDEX_METHODS = IndexMethod.values()
INDEX_MEASURES = IndexMeasure.values()
CLIENT_PROFILES = ClientProfile.values()
ITERATIVE_SCANS = IterativeScan.values()
SSL_MODES = SslMode.values()
# PostgreSQL's built-in text search configurations (pg_ts_config in a fresh cluster).
TEXT_SEARCH_CONFIGS = (
    "arabic", "armenian", "basque", "catalan", "danish", "dutch", "english", "finnish",
    "french", "german", "greek", "hindi", "hungarian", "indonesian", "irish", "italian",
    "lithuanian", "nepali", "norwegian", "portuguese", "romanian", "russian", "serbian",
    "simple", "spanish", "swedish", "tamil", "turkish", "yiddish")
