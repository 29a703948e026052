"""The policy pack's rules over the model's own objects: a shipped stack passes each rule,
and the one change each rule exists for fails it (the e2e test runs them in the engine)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from components.crossguard import SECRET_KEYS, Resource, StackView, stack_of
from components.crossguard.rules import (
    app_role_never_owns,
    ef_search_covers_limit,
    no_data_loss_outside_dev,
    protect_on_prod_and_supabase,
    row_security_forced,
    secrets_only_as_secrets,
    vector_index_when_large,
)
from components.crossguard.view import CHECK_RUN_TYPE, SQL_OBJECT_TYPE
from components.model import ObjectSpec, build_model
from components.provider import object_inputs
from components.settings import Settings, settings_payload
from components.stackfile import load_stack_settings

REPO = Path(__file__).resolve().parents[2]
STACK_RULES = (row_security_forced, app_role_never_owns, ef_search_covers_limit,
               protect_on_prod_and_supabase, vector_index_when_large)


def urn(stack: str, name: str, type_: str = SQL_OBJECT_TYPE) -> str:
    return f"urn:pulumi:{stack}::mem0infra::{type_}::{name}"


def view_of(settings: Settings, specs: list[ObjectSpec] | None = None,
            protect: bool | None = None) -> StackView:
    """The stack as AnalyzeStack would show it: one SqlObject per spec, a CheckRun."""
    protect = settings.protects_data if protect is None else protect
    resources = [Resource(SQL_OBJECT_TYPE, urn(settings.stack, spec.key),
                          object_inputs(spec, "postgresql://x", "h:5432/db", False),
                          protect and spec.data_bearing)
                 for spec in (build_model(settings) if specs is None else specs)]
    resources.append(Resource(CHECK_RUN_TYPE, urn(settings.stack, "pre", CHECK_RUN_TYPE),
                              {"settings": settings_payload(settings)}))
    return StackView.of(resources)


def changed(specs: list[ObjectSpec], kind: str, name: str, **fields: object) -> list[ObjectSpec]:
    """The specs with new `fields` for the one of `kind` named `name` (`schema.name`)."""
    return [dataclasses.replace(s, fields=dataclasses.replace(s.fields, **fields))
            if s.kind == kind and (f"{s.schema}.{s.name}" if s.schema else s.name) == name
            else s for s in specs]


def test_the_shipped_stacks_pass_every_stack_rule() -> None:
    for stack in ("dev", "staging", "prod"):
        view = view_of(load_stack_settings(stack, REPO))
        assert view.stack == stack
        assert {rule.__name__: rule(view) for rule in STACK_RULES} == \
            {rule.__name__: [] for rule in STACK_RULES}


def test_each_stack_rule_fails_on_the_change_it_guards() -> None:
    settings = load_stack_settings("prod", REPO)
    specs = build_model(settings)
    assert row_security_forced(view_of(settings, changed(
        specs, "row_security", "public.memories", enabled=False))) == [
        "table public.memories: row-level security is not enabled and forced on it (no "
        "row_security object declares ENABLE and FORCE ROW LEVEL SECURITY)"]
    [owned] = app_role_never_owns(view_of(settings, changed(
        specs, "table", "public.memory_history", owner=settings.app_role)))
    assert owned.startswith("table public.memory_history: owned by the app role 'mem0_app'")
    [create] = app_role_never_owns(view_of(settings, changed(
        specs, "grant", "extensions-to-mem0_app", privileges="CREATE, USAGE")))
    assert "CREATE on SCHEMA extensions" in create
    without_ef = [dataclasses.replace(s, fields=dataclasses.replace(
        s.fields, settings=tuple(kv for kv in s.fields.settings if kv[0] != "hnsw.ef_search")))
        if s.kind == "role_settings" else s for s in specs]
    assert ef_search_covers_limit(view_of(settings, without_ef)) == [
        "role mem0_app: no hnsw.ef_search is declared for the app role, so its searches run "
        "with pgvector's default 40, below mem0's LIMIT 80"]
    # every table: 4 memory tables, 4 in mem0_backup, 5 in mem0_migration, 2 in mem0_erasure
    assert len(protect_on_prod_and_supabase(view_of(settings, protect=False))) == 15
    l2 = dataclasses.replace(settings, vector_index=dataclasses.replace(
        settings.vector_index, measure="l2"))
    assert vector_index_when_large(view_of(l2))[0].startswith(
        "table public.memories: expectedRows is 2000000 (at least 100000), but no hnsw")


def test_resource_rules_read_the_inputs_and_their_secrecy() -> None:
    [table] = [s for s in build_model(load_stack_settings("prod", REPO)) if s.kind == "table"
               and s.name == "memories" and s.schema == "public"]
    inputs = object_inputs(table, "postgresql://x", "h:5432/db", True)
    for stack, embedded, fails in (("prod", False, True), ("dev", False, False),
                                   ("dev2", True, False)):
        props = {**inputs, "database": "embedded:.pgdata/x" if embedded else "h:5432/db"}
        found = no_data_loss_outside_dev(Resource(SQL_OBJECT_TYPE, urn(stack, "t"), props))
        assert bool(found) == fails, (stack, found)
    secret = {**inputs, SECRET_KEYS: {"connection": True, "ddl": False}}
    plain = {**inputs, SECRET_KEYS: {"connection": False}}
    assert secrets_only_as_secrets(Resource(SQL_OBJECT_TYPE, urn("p", "t"), secret)) == []
    assert secrets_only_as_secrets(Resource(SQL_OBJECT_TYPE, urn("p", "t"), plain)) == [
        "table public.memories: input 'connection' holds a credential in plain text; pass it "
        "as a secret (pulumi.Output.secret, or `pulumi config set --secret`)"]
    assert stack_of("urn:pulumi:prod::mem0infra::a$b::n") == "prod"
