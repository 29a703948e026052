"""Every settings rule, with the exact message an operator sees."""

from __future__ import annotations

import dataclasses
import json
import typing

import pytest

from components.choice import Choice
from components.errors import ExitCode, Mem0InfraError
from components.settings import (
    APP_ROLE_IDENTITIES,
    CLIENT_PROFILES,
    INDEX_MEASURES,
    INDEX_METHODS,
    ITERATIVE_SCANS,
    SECRET_FIELDS,
    SETTINGS,
    SPECS_BY_KEY,
    TARGETS,
    TENANCIES,
    AppRoleIdentity,
    ClientProfile,
    EncryptedValue,
    Fill,
    IndexMeasure,
    IndexMethod,
    IterativeScan,
    Settings,
    SettingsError,
    Target,
    Tenancy,
    parse_settings,
    settings_from_payload,
    settings_payload,
)
from components.settings.resolve import RESOLVERS
from components.timeouts import lock_timeout_ms

URL = "postgresql://deployer:s3cret@db.example.internal:5432/postgres"
REMOTE = {"databaseUrl": URL, "appRolePassword": "app-s3cret"}
# The passwords target postgres needs besides appRolePassword (supabase refuses them).
ROLE_PASSWORDS = {"readonlyRolePassword": "readonly-s3cret",
                  "serviceRolePassword": "service-s3cret"}
POSTGRES = {"target": "postgres", **REMOTE, **ROLE_PASSWORDS}
SUPABASE = {"target": "supabase", **REMOTE}


def missing_password(key: str, target: str = "postgres") -> str:
    return (f"{key}: not set, but target is {target!r}; set it with `pulumi config set "
            f"--secret {key} \"$(openssl rand -base64 32)\"` (allowed: a non-empty string)")


def error_of(raw: dict[str, object], stack: str = "dev") -> str:
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, stack)
    return str(caught.value)


def only_problem(raw: dict[str, object]) -> str:
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, "dev")
    assert len(caught.value.problems) == 1, caught.value.problems
    return caught.value.problems[0]


def test_defaults_are_the_dev_stack() -> None:
    s = parse_settings({}, "dev")
    assert (s.target, s.dimensions, s.collection, s.tenancy) == ("embedded", 1536, "memories",
                                                                 "user")
    assert s.embedded_data_dir == ".pgdata/dev"
    assert s.vector_index.method == "hnsw"
    assert (s.vector_index.m, s.vector_index.ef_construction) == (16, 64)
    assert (s.protect, s.allow_data_loss, s.warnings) == (False, False, ())


def test_settings_are_frozen() -> None:
    s = parse_settings({}, "dev")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.dimensions = 3  # type: ignore[misc]


def test_database_url_is_not_in_the_repr() -> None:
    s = parse_settings(POSTGRES, "dev")
    assert "s3cret" not in repr(s)
    assert s.database_url == URL and s.app_role_password == "app-s3cret"
    assert s.readonly_role_password == "readonly-s3cret"
    assert s.service_role_password == "service-s3cret"


@pytest.mark.parametrize(("raw", "message"), [
    ({"target": "mysql"},
     "target: 'mysql' is not allowed; allowed: embedded, postgres, supabase"),
    ({"tenancy": "team"},
     "tenancy: 'team' is not allowed; allowed: user, org, service"),
    ({"vectorIndexMethod": "diskann"},
     "vectorIndexMethod: 'diskann' is not allowed; allowed: auto, hnsw, ivfflat, none"),
    ({"vectorIndexMeasure": "cosine_distance"},
     "vectorIndexMeasure: 'cosine_distance' is not allowed; allowed: cosine, l2, ip, l1"),
    ({"dimensions": 0},
     "dimensions: 0 is not allowed; allowed: an integer from 1 to 16000"),
    ({"dimensions": 16001, "vectorIndexMethod": "none"},
     "dimensions: 16001 is not allowed; allowed: an integer from 1 to 16000"),
    ({"dimensions": "many"},
     "dimensions: 'many' is not an integer; allowed: an integer from 1 to 16000"),
    ({"dimensions": True},
     "dimensions: True is not an integer; allowed: an integer from 1 to 16000"),
    ({"vectorIndexM": 101},
     "vectorIndexM: 101 is not allowed; allowed: an integer from 0 to 100"),
    ({"vectorIndexM": 1, "vectorIndexMethod": "hnsw"},
     "vectorIndexM: 1 is not allowed; allowed: 2 to 100 (0 = auto)"),
    ({"vectorIndexEfConstruction": 3, "vectorIndexMethod": "hnsw"},
     "vectorIndexEfConstruction: 3 is not allowed; allowed: 4 to 1000 (0 = auto)"),
    ({"vectorIndexM": 32, "vectorIndexEfConstruction": 40},
     "vectorIndexEfConstruction: 40 is not allowed; allowed: at least 2 * vectorIndexM = 64 "
     "(pgvector's rule)"),
    ({"vectorIndexLists": 40000},
     "vectorIndexLists: 40000 is not allowed; allowed: an integer from 0 to 32768"),
    ({"expectedRows": -1},
     "expectedRows: -1 is not allowed; allowed: an integer from 0 to 1000000000000"),
    ({"protect": "yes"}, "protect: 'yes' is not allowed; use true or false"),
    ({"allowDataLoss": 1}, "allowDataLoss: 1 is not allowed; use true or false"),
    ({"lockTimeout": "10"}, "lockTimeout: '10' is not allowed; allowed: a duration with "
     "unit ms, s or min (e.g. 500ms, 10s, 2min) from 100ms to 10min"),
    ({"lockTimeout": "50ms"}, "lockTimeout: '50ms' is not allowed; allowed: a duration with "
     "unit ms, s or min (e.g. 500ms, 10s, 2min) from 100ms to 10min"),
    ({"lockTimeout": "11min"}, "lockTimeout: '11min' is not allowed; allowed: a duration "
     "with unit ms, s or min (e.g. 500ms, 10s, 2min) from 100ms to 10min"),
    ({"lockTimeout": "1s; drop table x"}, "lockTimeout: '1s; drop table x' is not allowed; "
     "allowed: a duration with unit ms, s or min (e.g. 500ms, 10s, 2min) from 100ms to 10min"),
    ({"collection": "Memories"},
     "collection: 'Memories' is not allowed; it must start with a lowercase letter or "
     "underscore and contain only lowercase letters, digits and underscores"),
    ({"collection": "my-memories"},
     "collection: 'my-memories' is not allowed; it must start with a lowercase letter or "
     "underscore and contain only lowercase letters, digits and underscores"),
    ({"collection": "a" * 41},
     f"collection: {'a' * 41!r} is not allowed; it must be at most 40 characters"),
    ({"collection": "user"}, "collection: 'user' is not allowed; it must not be an SQL keyword"),
    ({"collection": ""}, "collection: '' is not allowed; it must be a non-empty string"),
    ({"vectorIndexMethod": "ivfflat", "vectorIndexMeasure": "l1"},
     "vectorIndexMeasure: 'l1' is not allowed with vectorIndexMethod 'ivfflat'; allowed: "
     "cosine, l2, ip (pgvector's ivfflat has no l1 operator class)"),
    ({"dimensions": 3072},
     "dimensions: 3072 is not allowed with a hnsw index (vectorIndexMethod=auto with "
     "expectedRows=10000 (under 100K rows: hnsw m=16, ef_construction=64)) on target "
     "'embedded'; allowed: 1 to 2000, or set vectorIndexMethod to none (above 2000 dimensions "
     "the stack indexes halfvec columns, which need pgvector 0.7.0 or later; the embedded "
     "server bundles pgvector 0.6)"),
    ({"dimensions": 2001, "vectorIndexMethod": "ivfflat"},
     "dimensions: 2001 is not allowed with a ivfflat index (vectorIndexMethod=ivfflat) on "
     "target 'embedded'; allowed: 1 to 2000, or set vectorIndexMethod to none (above 2000 "
     "dimensions the stack indexes halfvec columns, which need pgvector 0.7.0 or later; the "
     "embedded server bundles pgvector 0.6)"),
    ({"dimensions": 4001, "vectorIndexMethod": "hnsw"},
     "dimensions: 4001 is not allowed with a hnsw index (vectorIndexMethod=hnsw); allowed: 1 "
     "to 4000 (pgvector indexes at most 2000 dimensions of type vector and 4000 of type "
     "halfvec, which the stack stores above 2000), or set vectorIndexMethod to none"),
    ({"poolerUrl": "mysql://u:secret@pooler:6543/db"},
     "poolerUrl: mysql://...@pooler is not allowed; allowed: a postgresql:// or postgres:// "
     "URL, or empty (value redacted: it is a secret)"),
    ({"sslMode": "require"},
     "sslMode: 'require' is not allowed with target 'embedded'; allowed: auto, disable (the "
     "embedded server listens on a local Unix socket, without TLS)"),
    ({"target": "postgres", "databaseUrl": "postgresql://d@h/db", "appRolePassword": "p",
      "readonlyRolePassword": "p", "serviceRolePassword": "p", "sslMode": "disable"},
     "sslMode: 'disable' is not allowed with target 'postgres'; allowed: auto, require, "
     "verify-ca, verify-full (a deployment's connections carry passwords and memories: at "
     "least require)"),
    ({"target": "supabase", "databaseUrl": "postgresql://d@h/db", "appRolePassword": "p",
      "sslMode": "verify-full"},
     "sslRootCert: not set, but sslMode is 'verify-full'; set it to the absolute path of the "
     "server's root certificate (PEM), or use sslMode require"),
    ({"sslRootCert": "certs/root.crt"},
     "sslRootCert: 'certs/root.crt' is not allowed; allowed: an absolute path of a PEM file "
     "(libpq reads it relative to each process's working directory otherwise), or empty"),
    ({"benchRows": 100, "benchUsers": 101},
     "benchUsers: 101 is not allowed with benchRows 100; allowed: 1 to 100 (every user "
     "needs a memory)"),
    ({"benchRows": 99},
     "benchRows: 99 is not allowed; allowed: an integer from 100 to 10000000"),
    ({"dimension": 768},
     "dimension: unknown setting; allowed keys: target, databaseUrl, sslMode, sslRootCert, "
     "embeddedDataDir, "
     "dimensions, collection, clientProfile, appRole, appRolePassword, hnswEfSearch, "
     "iterativeScan, historyIncludesVectors, ftsLanguage, tenancy, sharedAgentKnowledge, "
     "sessionScope, orgAdmins, agentSpaces, appRoleIdentity, ownerRole, readonlyRole, "
     "readonlyRolePassword, "
     "serviceRole, serviceRolePassword, vectorIndexMethod, vectorIndexMeasure, vectorIndexM, "
     "vectorIndexEfConstruction, vectorIndexLists, expectedRows, poolerUrl, "
     "poolerPreparedStatements, checksBenchmark, benchRows, benchUsers, benchInsertMs, "
     "benchSearchMs, benchGetMs, benchTraverseMs, snapshotSchedule, snapshotRetentionDays, "
     "expiredPurgeSchedule, sessionCleanupSchedule, sessionMaxAgeHours, "
     "historyRetentionSchedule, historyRetentionDays, analyzeSchedule, protect, allowDataLoss, "
     "lockTimeout"),
    ({"target": "supabase", "appRolePassword": "x"},
     "databaseUrl: not set, but target is 'supabase'; set it with `pulumi config set "
     "--secret databaseUrl postgresql://USER:PASSWORD@HOST:5432/DB` (allowed: a "
     "postgresql:// or postgres:// URL)"),
    ({"target": "postgres", "databaseUrl": URL, **ROLE_PASSWORDS},
     "appRolePassword: not set, but target is 'postgres'; set it with `pulumi config set "
     "--secret appRolePassword \"$(openssl rand -base64 32)\"` (allowed: a non-empty string)"),
    ({"target": "postgres", "appRolePassword": "x", **ROLE_PASSWORDS,
      "databaseUrl": "mysql://root:pw@db.example.internal/x"},
     "databaseUrl: mysql://...@db.example.internal is not allowed; allowed: a postgresql:// "
     "or postgres:// URL (value redacted: it is a secret)"),
    ({"clientProfile": "go"},
     "clientProfile: 'go' is not allowed; allowed: python, typescript"),
    ({"clientProfile": "typescript", "collection": "mem0"},
     "collection: 'mem0' is not allowed with clientProfile 'typescript'; allowed: 'memories' "
     "(the TS SDK's match_vectors() reads that table)"),
    ({"appRole": "Mem0-App"},
     "appRole: 'Mem0-App' is not allowed; it must start with a lowercase letter or underscore "
     "and contain only lowercase letters, digits and underscores"),
    ({"hnswEfSearch": 40},
     "hnswEfSearch: 40 is not allowed; allowed: an integer from 80 to 1000"),
    ({"iterativeScan": "relaxed_order"},
     "iterativeScan: 'relaxed_order' is not allowed with target 'embedded'; allowed: auto, off "
     "(the embedded server bundles pgvector 0.6, and iterative scans need pgvector 0.8 or "
     "later)"),
    ({"iterativeScan": "sometimes"},
     "iterativeScan: 'sometimes' is not allowed; allowed: auto, relaxed_order, strict_order, "
     "off"),
    ({"ftsLanguage": "klingon"},
     "ftsLanguage: 'klingon' is not allowed; allowed: (empty), arabic, armenian, basque, "
     "catalan, danish, dutch, english, finnish, french, german, greek, hindi, hungarian, "
     "indonesian, irish, italian, lithuanian, nepali, norwegian, portuguese, romanian, russian, "
     "serbian, simple, spanish, swedish, tamil, turkish, yiddish"),
])
def test_each_rule_names_key_value_and_what_is_allowed(raw: dict[str, object],
                                                       message: str) -> None:
    assert only_problem(raw) == message


def test_a_secret_value_never_appears_in_an_error() -> None:
    assert "pw" not in error_of({"target": "postgres",
                                 "databaseUrl": "mysql://root:pw@db.example.internal/x"})


def test_all_problems_are_reported_in_one_error() -> None:
    text = error_of({"target": "mysql", "dimensions": 0, "tenancy": "x"})
    assert text.startswith("invalid stack settings (3):\n")
    assert "target: 'mysql'" in text and "dimensions: 0" in text and "tenancy: 'x'" in text


def test_dimensions_over_2000_are_fine_without_an_index() -> None:
    s = parse_settings({"dimensions": 3072, "vectorIndexMethod": "none"}, "dev")
    assert s.dimensions == 3072 and s.vector_index.method == "none"
    assert s.vector_column_type == "vector"  # no index: full precision at any size


@pytest.mark.parametrize("dims, method, column", [
    (2000, "hnsw", "vector"), (2001, "hnsw", "halfvec"), (3072, "ivfflat", "halfvec"),
    (4000, "hnsw", "halfvec"), (3072, "none", "vector")])
def test_indexed_stacks_above_2000_dimensions_store_halfvec(dims: int, method: str,
                                                            column: str) -> None:
    s = parse_settings({"dimensions": dims, "vectorIndexMethod": method, **POSTGRES}, "dev")
    assert (s.vector_index.method, s.vector_column_type) == (method, column)
    assert s.warnings == ()


def test_auto_builds_no_index_above_4000_dimensions_and_says_so() -> None:
    s = parse_settings({"dimensions": 4001, **POSTGRES}, "dev")
    assert (s.vector_index.method, s.vector_column_type) == ("none", "vector")
    assert "no index" in s.vector_index.reason
    [warning] = s.warnings
    assert warning.startswith("dimensions is 4001: more than pgvector can index")


def test_pulumi_strings_are_coerced() -> None:
    s = parse_settings({"dimensions": "768", "protect": "true", "allowDataLoss": "False",
                        "hnswEfSearch": "120", "sharedAgentKnowledge": "true",
                        "sessionScope": "False", **POSTGRES}, "prod")
    assert s.hnsw_ef_search == 120
    assert (s.dimensions, s.protect, s.allow_data_loss) == (768, True, False)
    assert (s.shared_agent_knowledge, s.session_scope) == (True, False)


def test_an_encrypted_url_counts_as_set() -> None:
    s = parse_settings({"target": "supabase", "databaseUrl": EncryptedValue(),
                        "appRolePassword": EncryptedValue()}, "prod")
    assert s.database_url is None and s.database_url_encrypted
    assert s.extension_schema == "extensions"


@pytest.mark.parametrize(("rows", "m", "efc"), [
    (0, 16, 64), (99_999, 16, 64), (100_000, 16, 64), (1_000_000, 16, 64),
    (1_000_001, 32, 128), (50_000_000, 32, 128)])
def test_auto_follows_the_sizing_guide(rows: int, m: int, efc: int) -> None:
    index = parse_settings({"expectedRows": rows}, "dev").vector_index
    assert (index.method, index.m, index.ef_construction) == ("hnsw", m, efc)
    assert f"expectedRows={rows}" in index.reason


def test_explicit_parameters_beat_auto() -> None:
    index = parse_settings({"expectedRows": 5_000_000, "vectorIndexM": 8,
                            "vectorIndexEfConstruction": 40}, "dev").vector_index
    assert (index.m, index.ef_construction) == (8, 40)


@pytest.mark.parametrize(("rows", "lists"), [(0, 1), (50_000, 50), (1_000_000, 1000),
                                             (4_000_000, 2000)])
def test_ivfflat_lists_follow_pgvector_guidance(rows: int, lists: int) -> None:
    index = parse_settings({"vectorIndexMethod": "ivfflat", "expectedRows": rows},
                           "dev").vector_index
    assert index.lists == lists


def test_a_non_cosine_index_is_warned_about() -> None:
    s = parse_settings({"vectorIndexMeasure": "l2"}, "dev")
    assert s.warnings == ("vectorIndexMeasure is 'l2', but mem0 always searches with cosine "
                          "distance (<=>): mem0's searches will not use this index",)


def test_every_setting_has_a_description_and_a_typed_default() -> None:
    python_type = {"string": str, "integer": int, "boolean": bool}
    for spec in SETTINGS:
        assert spec.description
        assert type(spec.default) is python_type[spec.type], spec.key


@pytest.mark.parametrize(("raw", "resolved"), [
    ({}, "off"),  # embedded: pgvector 0.6
    (POSTGRES, "relaxed_order"),
    ({**POSTGRES, "iterativeScan": "strict_order"}, "strict_order"),
    ({**SUPABASE, "iterativeScan": "off"}, "off"),
])
def test_iterative_scan_auto_follows_the_target(raw: dict[str, object], resolved: str) -> None:
    assert parse_settings(raw, "dev").iterative_scan == resolved


# --- the roles: passwords, target, names ------------------------------------------------------

@pytest.mark.parametrize("key", ["readonlyRolePassword", "serviceRolePassword"])
def test_postgres_needs_the_readonly_and_service_passwords(key: str) -> None:
    raw: dict[str, object] = {k: v for k, v in POSTGRES.items() if k != key}
    assert only_problem(raw) == missing_password(key)
    assert only_problem({**raw, key: ""}) == missing_password(key)


def test_postgres_without_any_role_password_names_each() -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings({"target": "postgres", "databaseUrl": URL}, "dev")
    assert caught.value.problems == [missing_password("appRolePassword"),
                                     missing_password("readonlyRolePassword"),
                                     missing_password("serviceRolePassword")]


def test_an_encrypted_role_password_counts_as_set() -> None:
    s = parse_settings({**POSTGRES, "readonlyRolePassword": EncryptedValue(),
                        "serviceRolePassword": EncryptedValue()}, "prod")
    assert (s.readonly_role_password, s.service_role_password) == (None, None)


def test_embedded_needs_no_role_password() -> None:
    s = parse_settings({}, "dev")
    assert (s.app_role_password, s.readonly_role_password, s.service_role_password) == (
        None, None, None)
    assert (s.owner_role, s.app_role, s.readonly_role, s.service_role) == (
        "mem0_owner", "mem0_app", "mem0_readonly", "mem0_service")


def test_supabase_needs_neither_readonly_nor_service_password() -> None:
    s = parse_settings(SUPABASE, "prod")
    assert (s.readonly_role_password, s.service_role_password) == (None, None)


@pytest.mark.parametrize(("key", "value"), [
    ("ownerRole", "my_owner"), ("readonlyRole", "my_readonly"),
    ("readonlyRolePassword", "pw"), ("serviceRole", "my_service"),
    ("serviceRolePassword", "pw"), ("serviceRolePassword", EncryptedValue())])
def test_supabase_refuses_the_project_roles_it_does_not_use(key: str, value: object) -> None:
    assert only_problem({**SUPABASE, key: value}) == (
        f"{key}: not allowed with target 'supabase'; remove it (Supabase's own roles serve: "
        "postgres owns the objects, service_role bypasses row-level security, anon and "
        "authenticated are its end users)")


def test_supabase_names_every_refused_role_key() -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings({**SUPABASE, "ownerRole": "o", "readonlyRole": "r",
                        "readonlyRolePassword": "x", "serviceRole": "s",
                        "serviceRolePassword": "y"}, "prod")
    assert [p.split(":", 1)[0] for p in caught.value.problems] == [
        "ownerRole", "readonlyRole", "readonlyRolePassword", "serviceRole",
        "serviceRolePassword"]


def test_supabase_ignores_empty_project_role_keys_and_uses_its_own_roles() -> None:
    s = parse_settings({**SUPABASE, "ownerRole": "", "readonlyRolePassword": ""}, "prod")
    assert (s.owner_role, s.app_role, s.readonly_role, s.service_role) == (
        "postgres", "mem0_app", None, "service_role")


@pytest.mark.parametrize(("raw", "message"), [
    ({"readonlyRole": "mem0_app"},
     "readonlyRole: 'mem0_app' is not allowed; it is already appRole (each role has one job)"),
    ({"ownerRole": "mem0_app"},
     "ownerRole: 'mem0_app' is not allowed; it is already appRole (each role has one job)"),
    ({"serviceRole": "mem0_owner"},
     "serviceRole: 'mem0_owner' is not allowed; it is already ownerRole (each role has one "
     "job)"),
    ({"serviceRole": "mem0_readonly"},
     "serviceRole: 'mem0_readonly' is not allowed; it is already readonlyRole (each role has "
     "one job)"),
    ({"readonlyRole": "shared", "serviceRole": "shared"},
     "serviceRole: 'shared' is not allowed; it is already readonlyRole (each role has one "
     "job)"),
])
def test_each_role_has_its_own_name(raw: dict[str, object], message: str) -> None:
    assert only_problem(raw) == message
    assert only_problem({**POSTGRES, **raw}) == message


@pytest.mark.parametrize("key", ["appRole", "ownerRole", "readonlyRole", "serviceRole"])
@pytest.mark.parametrize("name", ["anon", "authenticated", "postgres", "service_role"])
def test_no_role_takes_a_name_supabase_or_postgresql_uses(key: str, name: str) -> None:
    assert only_problem({**POSTGRES, key: name}) == (
        f"{key}: {name!r} is not allowed; it is a name Supabase and PostgreSQL use for their "
        "own roles")


@pytest.mark.parametrize("name", ["anon", "authenticated", "postgres", "service_role"])
def test_the_app_role_takes_no_supabase_name_on_supabase_either(name: str) -> None:
    assert only_problem({**SUPABASE, "appRole": name}) == (
        f"appRole: {name!r} is not allowed; it is a name Supabase and PostgreSQL use for "
        "their own roles")


@pytest.mark.parametrize("key", ["ownerRole", "readonlyRole", "serviceRole"])
@pytest.mark.parametrize(("name", "why"), [
    ("Mem0-Owner", "must start with a lowercase letter or underscore and contain only "
                   "lowercase letters, digits and underscores"),
    ("1role", "must start with a lowercase letter or underscore and contain only lowercase "
              "letters, digits and underscores"),
    ("user", "must not be an SQL keyword"),
    ("r" * 64, "must be at most 63 characters"),
    ("", "must be a non-empty string"),
])
def test_role_names_are_plain_identifiers(key: str, name: str, why: str) -> None:
    assert only_problem({**POSTGRES, key: name}) == f"{key}: {name!r} is not allowed; it {why}"


def test_a_63_character_role_name_is_fine() -> None:
    s = parse_settings({**POSTGRES, "readonlyRole": "r" * 63}, "dev")
    assert s.readonly_role == "r" * 63


@pytest.mark.parametrize(("raw", "message"), [
    ({"appRoleIdentity": "sometimes"},
     "appRoleIdentity: 'sometimes' is not allowed; allowed: trusted, optional, required"),
    ({"appRoleIdentity": ""},
     "appRoleIdentity: '' is not allowed; allowed: trusted, optional, required"),
    ({"sharedAgentKnowledge": "yes"},
     "sharedAgentKnowledge: 'yes' is not allowed; use true or false"),
    ({"sessionScope": 1}, "sessionScope: 1 is not allowed; use true or false"),
    ({"ownerRole": 7}, "ownerRole: 7 is not allowed; allowed: a string"),
])
def test_access_settings_name_key_value_and_what_is_allowed(raw: dict[str, object],
                                                            message: str) -> None:
    assert only_problem(raw) == message


@pytest.mark.parametrize("identity", ["trusted", "optional", "required"])
def test_app_role_identity_is_kept(identity: str) -> None:
    assert parse_settings({"appRoleIdentity": identity}, "dev").app_role_identity == identity


def test_access_defaults() -> None:
    s = parse_settings({}, "dev")
    assert (s.shared_agent_knowledge, s.session_scope, s.app_role_identity) == (
        False, False, "trusted")


def test_role_password_gives_each_login_roles_secret() -> None:
    s = parse_settings({**POSTGRES, "appRole": "app", "readonlyRole": "ro",
                        "serviceRole": "svc", "ownerRole": "own"}, "dev")
    assert s.role_password("app") == "app-s3cret"
    assert s.role_password("ro") == "readonly-s3cret"
    assert s.role_password("svc") == "service-s3cret"
    assert s.role_password("own") is None  # NOLOGIN: no password
    assert s.role_password("someone_else") is None
    assert s.role_password("mem0_app") is None  # the default name, not this stack's role


def test_role_password_on_embedded_is_whatever_is_set() -> None:
    s = parse_settings({"readonlyRolePassword": "ro-pw"}, "dev")
    assert s.role_password("mem0_app") is None
    assert s.role_password("mem0_readonly") == "ro-pw"
    assert s.role_password("mem0_service") is None


def test_role_password_on_supabase_is_the_app_roles_only() -> None:
    s = parse_settings(SUPABASE, "prod")
    assert s.role_password("mem0_app") == "app-s3cret"
    # Supabase's own roles keep the passwords Supabase gave them
    assert s.role_password("service_role") is None
    assert s.role_password("postgres") is None
    assert s.role_password("mem0_readonly") is None


def test_pulumi_yaml_defaults_of_project_roles_are_accepted_on_supabase() -> None:
    # The Pulumi CLI passes Pulumi.yaml's default for every unset key to the program.
    defaults = {key: SPECS_BY_KEY[key].default
                for key in ("ownerRole", "readonlyRole", "readonlyRolePassword", "serviceRole",
                            "serviceRolePassword")}
    settings = parse_settings({"target": "supabase", "databaseUrl": "postgresql://u@h/db",
                               "appRolePassword": "pw", **defaults}, "prod")
    assert (settings.owner_role, settings.service_role) == ("postgres", "service_role")


@pytest.mark.parametrize("name", ["pg_owner", "public"])
def test_reserved_role_names_are_refused(name: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings({"ownerRole": name}, "dev")
    assert caught.value.problems == [
        f"ownerRole: {name!r} is not allowed; PostgreSQL reserves role names starting with "
        "pg_, and public means every role"]


def test_the_optional_app_role_identity_is_warned_about() -> None:
    """Its rule is opaque to the planner: the warning says what it costs and what to use."""
    [warning] = parse_settings({"appRoleIdentity": "optional"}, "dev").warnings
    assert "appRoleIdentity optional" in warning and "trusted" in warning
    assert not parse_settings({"appRoleIdentity": "required"}, "dev").warnings
    assert not parse_settings({}, "dev").warnings


# --- one declaration per setting: the Settings fields, the closed sets ------------------------

def test_every_declaration_fills_a_settings_field_and_every_field_is_filled() -> None:
    """A new setting without a field, or a new field without a setting, fails here."""
    hints = typing.get_type_hints(Settings)
    declared: set[str] = set()
    for spec in SETTINGS:
        group, dot, name = spec.field.rpartition(".")
        if spec.fill == Fill.RESOLVED:
            assert not dot and spec.field in RESOLVERS, spec.key
        elif dot:
            assert name in {f.name for f in dataclasses.fields(hints[group])}, spec.key
        else:
            assert spec.field in hints, spec.key
        declared.add(spec.field)
    plain = {s.field for s in SETTINGS if s.fill != Fill.RESOLVED}
    assert len(plain) == len([s for s in SETTINGS if s.fill != Fill.RESOLVED])  # one key each
    fields = {f.name for f in dataclasses.fields(Settings)}
    groups = {f.name for f in dataclasses.fields(Settings)
              if dataclasses.is_dataclass(hints[f.name]) and f.name not in RESOLVERS}
    for group in groups:
        members = {f"{group}.{f.name}" for f in dataclasses.fields(hints[group])}
        assert members <= declared, members - declared
    assert set(RESOLVERS) <= fields
    assert fields - groups == {f for f in declared if "." not in f} | set(RESOLVERS) | {
        "stack", "warnings"}


def test_the_fills_follow_the_declarations() -> None:
    assert [s.key for s in SETTINGS if s.fill == Fill.SECRET] == [
        s.key for s in SETTINGS if s.secret]
    assert [s.key for s in SETTINGS if s.fill == Fill.SCHEDULE] == [
        s.key for s in SETTINGS if s.cron]
    assert SECRET_FIELDS == ("database_url", "app_role_password", "readonly_role_password",
                             "service_role_password", "pooler_url")


@pytest.mark.parametrize(("choice", "values"), [
    (Target, TARGETS), (Tenancy, TENANCIES), (AppRoleIdentity, APP_ROLE_IDENTITIES),
    (IndexMethod, INDEX_METHODS), (IndexMeasure, INDEX_MEASURES),
    (ClientProfile, CLIENT_PROFILES), (IterativeScan, ITERATIVE_SCANS)])
def test_closed_sets_are_enums_whose_tuples_keep_their_order(choice: type[Choice],
                                                             values: tuple[str, ...]) -> None:
    assert values == tuple(m.value for m in choice)
    assert all(type(v) is str for v in values)
    for member in choice:
        assert member == member.value and str(member) == f"{member}" == member.value
        assert repr(member) == repr(member.value)  # messages quote values with !r


def test_settings_fields_hold_the_members_of_their_closed_sets() -> None:
    s = parse_settings({**SUPABASE, "tenancy": "org", "vectorIndexMethod": "ivfflat"}, "prod")
    assert s.target is Target.SUPABASE and s.tenancy is Tenancy.ORG
    assert s.client_profile is ClientProfile.PYTHON
    assert s.app_role_identity is AppRoleIdentity.TRUSTED
    assert s.iterative_scan is IterativeScan.RELAXED_ORDER
    assert s.vector_index.declared_method is IndexMethod.IVFFLAT
    assert s.vector_index.method is IndexMethod.IVFFLAT
    assert s.vector_index.measure is IndexMeasure.COSINE
    assert "target='supabase'" in repr(s) and "method='ivfflat'" in repr(s)


def test_settings_error_is_a_command_error_that_cannot_run() -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings({"target": "mysql"}, "dev")
    assert isinstance(caught.value, Mem0InfraError) and isinstance(caught.value, ValueError)
    assert caught.value.exit_code == ExitCode.UNUSABLE


# --- the checks' wire format ------------------------------------------------------------------

PAYLOAD_RAW: dict[str, object] = {
    **POSTGRES, "tenancy": "org", "vectorIndexMethod": "ivfflat", "expectedRows": 50000,
    "dimensions": 3072, "appRoleIdentity": "optional", "snapshotSchedule": "0  3 * * *",
    "poolerUrl": "postgresql://p:x@pool:6543/db", "ftsLanguage": "english"}
# What the code before the settings package wrote for PAYLOAD_RAW (stack "staging"), as
# it sits in the state of every CheckRun resource deployed since.
TODAYS_PAYLOAD: dict[str, object] = {
    "stack": "staging", "target": "postgres", "database_url_encrypted": False,
    "embedded_data_dir": ".pgdata/staging", "dimensions": 3072, "collection": "memories",
    "client_profile": "python", "app_role": "mem0_app", "hnsw_ef_search": 200,
    "iterative_scan": "relaxed_order", "history_includes_vectors": False,
    "fts_language": "english", "tenancy": "org", "shared_agent_knowledge": False,
    "session_scope": False, "app_role_identity": "optional", "owner_role": "mem0_owner",
    "readonly_role": "mem0_readonly", "service_role": "mem0_service",
    "vector_index": {"declared_method": "ivfflat", "method": "ivfflat", "measure": "cosine",
                     "m": 16, "ef_construction": 64, "lists": 50, "expected_rows": 50000,
                     "reason": "vectorIndexMethod=ivfflat"},
    "pooler_prepared_statements": False, "checks_benchmark": False,
    "bench": {"rows": 10000, "users": 100, "insert_ms": 50, "search_ms": 100, "get_ms": 10,
              "traverse_ms": 150},
    "jobs": {"snapshot_schedule": "0 3 * * *", "snapshot_retention_days": 7,
             "expired_purge_schedule": None, "session_cleanup_schedule": None,
             "session_max_age_hours": 24, "history_retention_schedule": None,
             "history_retention_days": 365, "analyze_schedule": None},
    "protect": False, "allow_data_loss": False,
    "warnings": ["appRoleIdentity optional: the planner cannot see through its rule, so "
                 "mem0's searches are sequential scans, or (prepared) filtered HNSW scans that "
                 "return short pages for small users; use trusted (the default) or required "
                 "(docs/performance.md)"]}


def _as_pulumi_returns(value: object) -> object:
    """Pulumi's wire format: numbers as doubles, keys whose value is None dropped."""
    if isinstance(value, dict):
        return {k: _as_pulumi_returns(v) for k, v in value.items() if v is not None}
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def test_the_payload_is_byte_identical_to_todays() -> None:
    payload = settings_payload(parse_settings(PAYLOAD_RAW, "staging"))
    assert json.dumps(payload) == json.dumps(TODAYS_PAYLOAD)
    assert json.dumps(payload, sort_keys=True) == json.dumps(TODAYS_PAYLOAD, sort_keys=True)


def test_the_payload_holds_plain_strings_and_no_secret() -> None:
    payload = settings_payload(parse_settings(PAYLOAD_RAW, "staging"))
    for value in (payload["target"], payload["tenancy"], payload["iterative_scan"],
                  payload["vector_index"]["method"]):
        assert type(value) is str
    text = json.dumps(payload)
    assert "s3cret" not in text and "p:x@pool" not in text


def test_a_payload_in_state_written_by_todays_code_reads_back() -> None:
    settings = parse_settings(PAYLOAD_RAW, "staging")
    wire = _as_pulumi_returns(TODAYS_PAYLOAD)
    assert isinstance(wire, dict)
    back = settings_from_payload(wire, pooler_url="postgresql://p:x@pool:6543/db")
    assert back == dataclasses.replace(settings, database_url=None, app_role_password=None,
                                       readonly_role_password=None, service_role_password=None)
    assert back.target is Target.POSTGRES and back.vector_index.method is IndexMethod.IVFFLAT
    assert back.jobs.scheduled() == {"snapshotSchedule": "0 3 * * *"}
    assert type(back.dimensions) is int and type(back.vector_index.lists) is int


@pytest.mark.parametrize(("value", "ms"), [("100ms", 100), ("10s", 10_000), ("2min", 120_000),
                                           ("10min", 600_000)])
def test_lock_timeout_takes_bounded_durations(value: str, ms: int) -> None:
    assert parse_settings({"lockTimeout": value}, "dev").lock_timeout == value
    assert lock_timeout_ms(value) == ms


def test_lock_timeout_defaults_to_ten_seconds() -> None:
    assert parse_settings({}, "dev").lock_timeout == "10s"


# --- orgAdmins and agentSpaces -----------------------------------------------------------------

@pytest.mark.parametrize("tenancy", ["user", "service"])
def test_org_admins_needs_org_tenancy(tenancy: str) -> None:
    assert only_problem({"tenancy": tenancy, "orgAdmins": True}) == (
        f"orgAdmins: true is not allowed with tenancy {tenancy!r}; allowed: false, or set "
        "tenancy to 'org' (admins are members of an organisation)")
    assert parse_settings({"tenancy": "org", "orgAdmins": True}, "dev").org_admins is True


@pytest.mark.parametrize("raw", [{}, {"tenancy": "org"}, {**POSTGRES, "tenancy": "org"}])
def test_agent_spaces_is_refused_where_it_would_bind_no_role(raw: dict[str, object]) -> None:
    """A trusted app role's policy is `true` and the readonly role writes nothing: on
    postgres and embedded the option would bind nobody."""
    problem = only_problem({**raw, "agentSpaces": True})
    assert problem.startswith("agentSpaces: true is not allowed with appRoleIdentity "
                              "'trusted'"), problem
    assert "set appRoleIdentity to 'required' or 'optional'" in problem


@pytest.mark.parametrize("identity", ["required", "optional"])
def test_agent_spaces_binds_a_bound_app_role(identity: str) -> None:
    s = parse_settings({"agentSpaces": True, "appRoleIdentity": identity}, "dev")
    assert s.agent_spaces is True
    assert not [w for w in s.warnings if "agentSpaces" in w]


def test_agent_spaces_with_a_trusted_app_role_on_supabase_warns() -> None:
    s = parse_settings({**SUPABASE, "agentSpaces": True}, "dev")
    assert s.agent_spaces is True
    assert [w for w in s.warnings if w.startswith("agentSpaces binds authenticated only")]
    assert only_problem({**SUPABASE, "agentSpaces": True, "tenancy": "service"}).startswith(
        "agentSpaces: true is not allowed with appRoleIdentity 'trusted' on target "
        "'supabase' with tenancy 'service'")


def test_org_admins_and_agent_spaces_travel_in_the_payload_only_when_on() -> None:
    off = settings_payload(parse_settings(PAYLOAD_RAW, "staging"))
    assert "org_admins" not in off and "agent_spaces" not in off
    on = parse_settings({**PAYLOAD_RAW, "orgAdmins": True, "agentSpaces": True}, "staging")
    payload = settings_payload(on)
    assert payload["org_admins"] is True and payload["agent_spaces"] is True
    back = settings_from_payload(payload, pooler_url=on.pooler_url)
    assert back == dataclasses.replace(on, database_url=None, app_role_password=None,
                                       readonly_role_password=None, service_role_password=None)
