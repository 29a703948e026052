"""The checks that span keys or look inside a value: collection and role names, URLs,
passwords a target needs, the benchmark's size, pg_cron schedules.

Each appends problems naming the key, the value (redacted for secrets) and what is
allowed; a value already reported invalid arrives as None and is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from components.identifiers import identifier_problem
from components.schedule import ALLOWED as CRON_ALLOWED
from components.schedule import schedule_problem
from components.settings.choices import TARGETS, AppRoleIdentity, ClientProfile, Target, Tenancy
from components.settings.spec import (
    MAX_COLLECTION_LENGTH,
    PROJECT_ROLE_KEYS,
    SETTINGS,
    SPECS_BY_KEY,
    SUPABASE_END_USER_ROLES,
    SUPABASE_OWNER,
    SUPABASE_SERVICE_ROLE,
    TYPESCRIPT_TABLE,
    EncryptedValue,
)
from components.timeouts import lock_timeout_problem

__all__ = ["agent_spaces_warning", "check_access_options", "check_bench", "check_collection",
           "check_database_url", "check_lock_timeout", "check_pooler_url", "check_roles",
           "check_schedules", "check_ssl_root_cert"]

POSTGRES_SCHEMES = ("postgresql", "postgres")


def check_collection(values: Mapping[str, Any], problems: list[str]) -> None:
    """A plain identifier short enough for every derived name; `memories` for typescript."""
    collection = values["collection"]
    if isinstance(collection, str):
        why = identifier_problem(collection, MAX_COLLECTION_LENGTH)
        if why:
            problems.append(f"collection: {collection!r} is not allowed; it {why}")
    if (values["clientProfile"] == ClientProfile.TYPESCRIPT and isinstance(collection, str)
            and collection != TYPESCRIPT_TABLE):
        problems.append(
            f"collection: {collection!r} is not allowed with clientProfile 'typescript'; "
            f"allowed: {TYPESCRIPT_TABLE!r} (the TS SDK's match_vectors() reads that table)")


def redacted_url(url: str) -> str:
    """Scheme and host only: the rest of a connection URL may hold a password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        return f"{parts.scheme}://...@{host}" if parts.scheme else "<not a URL>"
    except ValueError:
        return "<not a URL>"


def check_database_url(values: Mapping[str, Any], problems: list[str]) -> None:
    """Set unless the target is embedded, and a postgresql:// URL."""
    target, url = values["target"], values["databaseUrl"]
    if target not in TARGETS or isinstance(url, EncryptedValue):
        return
    if not url:
        if target != Target.EMBEDDED:
            problems.append(
                f"databaseUrl: not set, but target is {target!r}; set it with "
                "`pulumi config set --secret databaseUrl postgresql://USER:PASSWORD@HOST:5432/DB`"
                " (allowed: a postgresql:// or postgres:// URL)"
            )
        return
    assert isinstance(url, str)
    if urlsplit(url).scheme not in POSTGRES_SCHEMES:
        problems.append(
            f"databaseUrl: {redacted_url(url)} is not allowed; allowed: a postgresql:// or "
            "postgres:// URL (value redacted: it is a secret)"
        )


def _missing_password(key: str, target: str) -> str:
    return (f"{key}: not set, but target is {target!r}; set it with "
            f"`pulumi config set --secret {key} \"$(openssl rand -base64 32)\"` "
            "(allowed: a non-empty string)")


def check_roles(raw: Mapping[str, object], values: Mapping[str, Any],
                problems: list[str]) -> None:
    """Role names are distinct identifiers; passwords are there where the target needs
    them; on supabase, the project's own roles other than appRole are not used."""
    target = values["target"]
    if target not in TARGETS:
        return
    if target != Target.EMBEDDED and not values["appRolePassword"]:
        problems.append(_missing_password("appRolePassword", target))
    names: dict[str, object] = {"appRole": values["appRole"]}
    for key, password_key in PROJECT_ROLE_KEYS.items():
        if target == Target.SUPABASE:
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
        if password_key and target == Target.POSTGRES and not values[password_key]:
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


def check_ssl_root_cert(values: Mapping[str, Any], problems: list[str]) -> None:
    """Empty, or an absolute path: libpq reads it in whichever process connects (the
    provider, the CLI, the application), whose working directories differ. Whether the
    file exists and parses is the preflight's `tls` check: it lives on the machines that
    connect, not necessarily on the one that parses these settings (render, plan)."""
    path = values["sslRootCert"]
    if isinstance(path, str) and path and not path.startswith("/"):
        problems.append(f"sslRootCert: {path!r} is not allowed; allowed: an absolute path of "
                        "a PEM file (libpq reads it relative to each process's working "
                        "directory otherwise), or empty")


def check_pooler_url(values: Mapping[str, Any], problems: list[str]) -> None:
    """Empty, or a postgresql:// URL (redacted in the message)."""
    pooler = values["poolerUrl"]
    if isinstance(pooler, str) and pooler and urlsplit(pooler).scheme not in POSTGRES_SCHEMES:
        problems.append(f"poolerUrl: {redacted_url(pooler)} is not allowed; allowed: a "
                        "postgresql:// or postgres:// URL, or empty (value redacted: it is a "
                        "secret)")


def check_bench(values: Mapping[str, Any], problems: list[str]) -> None:
    """Every benchmark user needs a memory."""
    rows, users = values["benchRows"], values["benchUsers"]
    if isinstance(rows, int) and isinstance(users, int) and users > rows:
        problems.append(f"benchUsers: {users} is not allowed with benchRows {rows}; allowed: "
                        f"1 to {rows} (every user needs a memory)")


def check_schedules(values: Mapping[str, Any], problems: list[str]) -> None:
    """Each job's schedule is one pg_cron takes; jobs serve the python profile's tables."""
    for spec in SETTINGS:
        schedule = values[spec.key]
        if not spec.cron or not isinstance(schedule, str) or not schedule.strip():
            continue
        why = schedule_problem(schedule)
        if why:
            problems.append(f"{spec.key}: {schedule!r} is not allowed ({why}); allowed: "
                            f"{CRON_ALLOWED}, or empty for no job")
        elif values["clientProfile"] == ClientProfile.TYPESCRIPT:
            problems.append(f"{spec.key}: not allowed with clientProfile 'typescript'; "
                            "allowed: empty (the jobs keep the python profile's tables)")


def check_lock_timeout(values: Mapping[str, Any], problems: list[str]) -> None:
    """lockTimeout is a bounded PostgreSQL duration (components/timeouts.py)."""
    value = values["lockTimeout"]
    if value is not None and (why := lock_timeout_problem(value)):
        problems.append(why)


def _agent_bound_roles(values: Mapping[str, Any]) -> list[str]:
    """The roles agentSpaces binds: those that write under policies. A trusted app role's
    policy is the literal `true` (no predicate can be added without losing its plans), the
    readonly role writes nothing, and tenancy service gives end users nothing."""
    bound = []
    if values["appRoleIdentity"] in (AppRoleIdentity.REQUIRED, AppRoleIdentity.OPTIONAL):
        bound.append("appRole")
    if values["target"] == Target.SUPABASE and values["tenancy"] in (Tenancy.USER, Tenancy.ORG):
        bound.append("authenticated")
    return bound


def check_access_options(values: Mapping[str, Any], problems: list[str]) -> None:
    """orgAdmins needs org tenancy; agentSpaces needs a role it can bind."""
    tenancy = values["tenancy"]
    if values["orgAdmins"] is True and tenancy is not None and tenancy != Tenancy.ORG:
        problems.append(f"orgAdmins: true is not allowed with tenancy {tenancy!r}; allowed: "
                        "false, or set tenancy to 'org' (admins are members of an "
                        "organisation)")
    if values["agentSpaces"] is True and None not in (
            values["appRoleIdentity"], values["target"], tenancy) \
            and not _agent_bound_roles(values):
        problems.append(
            f"agentSpaces: true is not allowed with appRoleIdentity "
            f"{values['appRoleIdentity']!r} on target {values['target']!r} with tenancy "
            f"{tenancy!r}: no role that writes would be bound (a trusted appRole's policy "
            "is `true`; end users write only on supabase with tenancy user or org); "
            "allowed: false, or set appRoleIdentity to 'required' or 'optional'")


def agent_spaces_warning(values: Mapping[str, Any]) -> str | None:
    """agentSpaces with a trusted app role: it binds end users, and not mem0's
    connection, which is easy to miss."""
    if values["agentSpaces"] is True and values["appRoleIdentity"] == AppRoleIdentity.TRUSTED \
            and _agent_bound_roles(values):
        return ("agentSpaces binds authenticated only: appRoleIdentity 'trusted' keeps "
                "appRole's policy `true`, so mem0's own connection writes any agent's rows; "
                "set appRoleIdentity to 'required' to bind it too (docs/security.md)")
    return None
