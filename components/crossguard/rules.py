"""One function per policy of the pack: what must hold on every stack, as messages naming
the object, what is wrong and the fix. An empty list is a pass.

Resource rules take one resource (its inputs, as `Analyze` sees them before it is
created or changed); stack rules take the whole stack (`AnalyzeStack`: every resource's
final properties and options). docs/policy.md says what each checks and why.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from components.crossguard.view import (
    CHECK_RUN_TYPE,
    SQL_OBJECT_TYPE,
    Resource,
    StackView,
    stack_of,
)
from components.kinds import Kind
from components.mem0 import DEFAULT_SEARCH_LIMIT
from components.settings.choices import Target
from components.settings.values import PROD_STACKS

__all__ = ["LARGE_EXPECTED_ROWS", "RESOURCE_RULES", "SECRET_INPUTS", "SECRET_KEYS",
           "STACK_RULES", "Rule"]

# The property the pack adds to each resource's inputs: for every input that is set (not
# null or empty), whether it arrived as a secret (pulumi-policy hands a policy every secret
# unwrapped; policy/__main__.py). Unknown values in a preview are left out.
SECRET_KEYS = "__mem0Secrecy"
# Inputs that hold credentials, per resource type: each must be a secret when set.
SECRET_INPUTS = {SQL_OBJECT_TYPE: ("connection", "password"),
                 CHECK_RUN_TYPE: ("connection", "poolerUrl")}
# From this many expected memories on, a search without an ANN index reads too many rows:
# the first boundary of the sizing guide (components/vectorindex.py, `_auto_hnsw`).
LARGE_EXPECTED_ROWS = 100_000
# Stacks whose data may be thrown away (allowDataLoss) and that need no protect.
DEV_STACKS = ("dev",)
# What the app role may hold on a table: rows only (no TRUNCATE, TRIGGER, REFERENCES,
# MAINTAIN, and never ownership, which alone allows ALTER and DROP).
APP_TABLE_PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
_ANN_INDEX = re.compile(r"USING (hnsw|ivfflat) \((\w+) ([\w.]+_ops)")

Check = Callable[[Any], list[str]]


@dataclass(frozen=True)
class Rule:
    """A policy: name, one-line description (shown with every violation) and its check."""

    name: str
    description: str
    check: Check


def _embedded(props: Any) -> bool:
    return str(props.get("database") or "").startswith("embedded:")


# --- resource rules --------------------------------------------------------------------------


def secrets_only_as_secrets(resource: Resource) -> list[str]:
    """Every credential input (connection URL, role password, pooler URL) is a secret."""
    secrecy = resource.props.get(SECRET_KEYS) or {}
    return [f"{resource.label}: input {key!r} holds a credential in plain text; pass it "
            "as a secret (pulumi.Output.secret, or `pulumi config set --secret`)"
            for key in SECRET_INPUTS.get(resource.type, ()) if secrecy.get(key) is False]


def no_data_loss_outside_dev(resource: Resource) -> list[str]:
    """allowDataLoss only on the dev stack (or an embedded, local database)."""
    if resource.type != SQL_OBJECT_TYPE or resource.kind != Kind.TABLE:
        return []
    stack = stack_of(resource.urn)
    if resource.props.get("allow_data_loss") is True and stack not in DEV_STACKS \
            and not _embedded(resource.props):
        return [f"{resource.label}: allowDataLoss is on for stack {stack!r}; it is allowed "
                f"only on {', '.join(DEV_STACKS)} (a local database). Turn it off with "
                "`pulumi config set allowDataLoss false`"]
    return []


# --- stack rules -----------------------------------------------------------------------------


def row_security_forced(view: StackView) -> list[str]:
    """Every table of the memory tables has row-level security enabled and forced."""
    forced = {f.table for r in view.of_kind(Kind.ROW_SECURITY)
              if (f := r.fields()) is not None and f.enabled and f.forced}
    return [f"{table.label}: row-level security is not enabled and forced on it (no "
            "row_security object declares ENABLE and FORCE ROW LEVEL SECURITY)"
            for table in view.of_kind(Kind.TABLE)
            if (f := table.fields()) is not None and f.table not in forced]


def app_role_never_owns(view: StackView) -> list[str]:
    """The app role owns nothing and holds only row privileges on tables, no CREATE."""
    app = view.setting("app_role")
    if not app:
        return ["no check resource carries the stack's settings: cannot tell the app role"]
    problems: list[str] = []
    for kind in (Kind.TABLE, Kind.SCHEMA):
        for r in view.of_kind(kind):
            f = r.fields()
            if f is not None and f.owner == app:
                problems.append(f"{r.label}: owned by the app role {app!r}, which may then "
                                "alter or drop it; the owner must be the owner role")
    for r in view.of_kind(Kind.GRANT):
        f = r.fields()
        if f is None or f.role != app or not f.privileges:
            continue
        held = {p.strip().upper() for p in f.privileges.split(",")}
        object_type = f.on.split(" ", 1)[0].upper()
        extra = held - APP_TABLE_PRIVILEGES if object_type == "TABLE" else \
            held & {"CREATE", "ALL", "ALL PRIVILEGES"} if object_type == "SCHEMA" else set()
        if extra:
            problems.append(f"{r.label}: grants the app role {app!r} "
                            f"{', '.join(sorted(extra))} on {f.on}; it may hold only "
                            f"{', '.join(sorted(APP_TABLE_PRIVILEGES))} on tables and no "
                            "CREATE on schemas")
    return problems


def ef_search_covers_limit(view: StackView) -> list[str]:
    """hnsw.ef_search of the app role is at least mem0's LIMIT wherever an hnsw index
    serves its searches, and no role's declared ef_search is below it."""
    app = view.setting("app_role")
    declared: dict[str, int] = {}
    for r in view.of_kind(Kind.ROLE_SETTINGS):
        f = r.fields()
        if f is not None:
            for name, value in f.settings:
                if name == "hnsw.ef_search":
                    declared[f.role] = int(value)
    problems = [f"settings of role {role}: hnsw.ef_search is {value}, below mem0's LIMIT "
                f"{DEFAULT_SEARCH_LIMIT}: an hnsw scan returns at most ef_search rows, so "
                f"mem0's searches silently come back short; set it to {DEFAULT_SEARCH_LIMIT} "
                "or more (hnswEfSearch)"
                for role, value in sorted(declared.items()) if value < DEFAULT_SEARCH_LIMIT]
    hnsw = any("USING hnsw" in str(r.props.get("ddl") or "") for r in view.of_kind(Kind.INDEX))
    if hnsw and app and app not in declared:
        problems.append(f"role {app}: no hnsw.ef_search is declared for the app role, so its "
                        f"searches run with pgvector's default 40, below mem0's LIMIT "
                        f"{DEFAULT_SEARCH_LIMIT}")
    return problems


def protect_on_prod_and_supabase(view: StackView) -> list[str]:
    """On a stack named prod or with target supabase, every table is protected."""
    target = view.setting("target")
    if view.stack not in PROD_STACKS and target != Target.SUPABASE:
        return []
    why = f"stack {view.stack!r}" if view.stack in PROD_STACKS else f"target {target!r}"
    return [f"{r.label}: not protected on {why}; a table holds memories, and the program "
            "protects every table there (Settings.protects_data)"
            for r in view.of_kind(Kind.TABLE) if not r.protect]


def vector_index_when_large(view: StackView) -> list[str]:
    """A stack expecting many memories declares an hnsw or ivfflat index with the cosine
    operator class (mem0 searches with <=>) on the memories' vector column."""
    index = view.setting("vector_index") or {}
    rows = int(index.get("expected_rows") or 0)
    collection = view.setting("collection")
    if rows < LARGE_EXPECTED_ROWS or not collection:
        return []
    for r in view.of_kind(Kind.INDEX):
        match = _ANN_INDEX.search(str(r.props.get("ddl") or ""))
        if r.props.get("table") == collection and match and match[3].endswith("_cosine_ops"):
            return []
    return [f"table public.{collection}: expectedRows is {rows} (at least "
            f"{LARGE_EXPECTED_ROWS}), but no hnsw or ivfflat index with a cosine operator "
            "class serves mem0's searches, so each reads every row; set vectorIndexMethod "
            "to auto, hnsw or ivfflat and vectorIndexMeasure to cosine"]


RESOURCE_RULES = (
    Rule("secrets-only-as-secrets",
         "Connection URLs and passwords reach resources only as secrets.",
         secrets_only_as_secrets),
    Rule("no-data-loss-outside-dev",
         "allowDataLoss is allowed only on the dev stack.", no_data_loss_outside_dev),
)
STACK_RULES = (
    Rule("row-security-forced",
         "Row-level security is enabled and forced on every memory table.",
         row_security_forced),
    Rule("app-role-never-owns",
         "The app role never owns a table or schema and may not alter a table.",
         app_role_never_owns),
    Rule("ef-search-covers-limit",
         f"hnsw.ef_search of the app role is at least mem0's LIMIT {DEFAULT_SEARCH_LIMIT}.",
         ef_search_covers_limit),
    Rule("protect-prod-and-supabase",
         "Tables are protected on a stack named prod or with target supabase.",
         protect_on_prod_and_supabase),
    Rule("vector-index-when-large",
         f"A stack expecting {LARGE_EXPECTED_ROWS} memories or more has a cosine vector "
         "index.", vector_index_when_large),
)
