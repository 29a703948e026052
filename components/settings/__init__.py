"""Stack settings: each declared once, parsed and validated in one place.

The Pulumi program, the CLI (which reads `Pulumi.<stack>.yaml` directly) and the tests
all go through `parse_settings`, which returns one frozen `Settings` or raises
`SettingsError` listing every invalid key with the value given and what is allowed.

- `spec.py`       every setting: key, type, default, allowed values, description, secret,
                  bounds, and the `Settings` field it fills (`SETTINGS`)
- `choices.py`    the closed sets (`Target`, `Tenancy`, ...) and their tuples
- `values.py`     `Settings` and its groups (`BenchThresholds`, `LifecycleJobs`)
- `parse.py`      raw values -> `Settings`: coercion, then every field from `SETTINGS`
- `rules.py`      the checks across keys (names, URLs, passwords, schedules)
- `resolve.py`    the fields computed from several keys (iterative scan, roles, index)
- `payload.py`    the checks' wire format (`settings_payload`, `settings_from_payload`)
- `markdown.py`   README.md's settings table
- `pulumiyaml.py` Pulumi.yaml's `config:` block
- `command.py`    `python -m components settings` (prints the two above)

The vector index is sized by `components.vectorindex` (the model's), re-exported here.
`pulumiyaml` and `command` import `components.stackfile`, which imports this package, so
this package does not import them.
"""

from __future__ import annotations

from components.settings.choices import (
    APP_ROLE_IDENTITIES,
    CLIENT_PROFILES,
    INDEX_MEASURES,
    INDEX_METHODS,
    ITERATIVE_SCANS,
    SSL_MODES,
    TARGETS,
    TENANCIES,
    TEXT_SEARCH_CONFIGS,
    AppRoleIdentity,
    ClientProfile,
    IterativeScan,
    SslMode,
    Target,
    Tenancy,
)
from components.settings.markdown import settings_table_markdown
from components.settings.parse import SettingsError, parse_settings, settings_from_pulumi_config
from components.settings.payload import SECRET_FIELDS, settings_from_payload, settings_payload
from components.settings.spec import (
    JOB_SETTINGS,
    MAX_COLLECTION_LENGTH,
    PROJECT,
    PROJECT_ROLE_KEYS,
    SETTINGS,
    SPECS_BY_KEY,
    SUPABASE_END_USER_ROLES,
    SUPABASE_OWNER,
    SUPABASE_SERVICE_ROLE,
    TYPESCRIPT_TABLE,
    ConfigType,
    EncryptedValue,
    Fill,
    SettingSpec,
)
from components.settings.values import BenchThresholds, LifecycleJobs, Settings
from components.vectorindex import (
    HALFVEC_PGVECTOR,
    MAX_DIMENSIONS,
    MAX_HALFVEC_INDEXED_DIMENSIONS,
    MAX_INDEXED_DIMENSIONS,
    IndexMeasure,
    IndexMethod,
    VectorIndex,
    vector_column_type,
)

__all__ = [
    "APP_ROLE_IDENTITIES",
    "CLIENT_PROFILES",
    "HALFVEC_PGVECTOR",
    "INDEX_MEASURES",
    "INDEX_METHODS",
    "ITERATIVE_SCANS",
    "JOB_SETTINGS",
    "MAX_COLLECTION_LENGTH",
    "MAX_DIMENSIONS",
    "MAX_HALFVEC_INDEXED_DIMENSIONS",
    "MAX_INDEXED_DIMENSIONS",
    "PROJECT",
    "PROJECT_ROLE_KEYS",
    "SECRET_FIELDS",
    "SETTINGS",
    "SPECS_BY_KEY",
    "SSL_MODES",
    "SUPABASE_END_USER_ROLES",
    "SUPABASE_OWNER",
    "SUPABASE_SERVICE_ROLE",
    "TARGETS",
    "TENANCIES",
    "TEXT_SEARCH_CONFIGS",
    "TYPESCRIPT_TABLE",
    "AppRoleIdentity",
    "BenchThresholds",
    "ClientProfile",
    "ConfigType",
    "EncryptedValue",
    "Fill",
    "IndexMeasure",
    "IndexMethod",
    "IterativeScan",
    "LifecycleJobs",
    "SettingSpec",
    "Settings",
    "SettingsError",
    "SslMode",
    "Target",
    "Tenancy",
    "VectorIndex",
    "parse_settings",
    "settings_from_payload",
    "settings_from_pulumi_config",
    "settings_payload",
    "settings_table_markdown",
    "vector_column_type",
]
