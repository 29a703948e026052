"""The policy pack (policy/) through the real CLI: `pulumi preview --policy-pack policy`
passes on the stacks as shipped and fails with each policy's message on a stack that
breaks it, by config or by a change of the program.

Previews call only the providers' check and diff, so the shipped staging and prod stacks
preview against a Supabase URL that does not exist (as in test_program.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from components.crossguard import RESOURCE_RULES, STACK_RULES
from components.mem0 import DEFAULT_SEARCH_LIMIT
from tests.support.engine import REPO, PulumiStack, Report

pytestmark = pytest.mark.e2e

PACK = REPO / "policy"
URL = "postgresql://deployer:Tr0ub4dor-and-3@db.abcdefgh.supabase.co:5432/postgres"
SECRETS = {"databaseUrl": URL, "appRolePassword": "correct-horse-battery-staple"}
DESCRIPTIONS = {rule.name: rule.description for rule in (*RESOURCE_RULES, *STACK_RULES)}

# A program that breaks five policies, one change each, on top of the real program.
BROKEN_PROGRAM = '''
import dataclasses

import pulumi

import components.program as program
import components.resources as resources
from components.settings import values

# protect-prod-and-supabase: tables unprotected
values.Settings.protects_data = property(lambda self: False)

# ef-search-covers-limit: pgvector's default, below mem0's LIMIT
_read = program.read_settings
program.read_settings = lambda: dataclasses.replace(_read(), hnsw_ef_search=40)

_build = resources.build_model


def _broken_model(settings):
    specs = []
    for spec in _build(settings):
        if spec.kind == "row_security" and spec.name == "memory_history":
            # row-security-forced: history's rows no longer forced under RLS
            spec = dataclasses.replace(spec, fields=dataclasses.replace(spec.fields, forced=False))
        app_grant = spec.kind == "grant" and spec.role == settings.app_role
        if app_grant and spec.on == "TABLE public.memories":
            # app-role-never-owns: TRUNCATE and TRIGGER for the app role
            spec = dataclasses.replace(spec, fields=dataclasses.replace(
                spec.fields, privileges="DELETE, INSERT, SELECT, TRIGGER, TRUNCATE, UPDATE"))
        specs.append(spec)
    return specs


resources.build_model = _broken_model

_inputs = resources.object_inputs


def _plain_role_inputs(spec, *args, **kwargs):
    inputs = _inputs(spec, *args, **kwargs)
    if spec.kind == "role":
        # secrets-only-as-secrets: the role's connection and password in plain text
        inputs["connection"] = pulumi.Output.unsecret(inputs["connection"])
        if inputs.get("password") is not None:
            inputs["password"] = pulumi.Output.unsecret(inputs["password"])
    return inputs


resources.object_inputs = _plain_role_inputs

program.run()
'''


def policy_preview(stack: str, tmp_path: Path, program: str | None = None,
                   **config: object) -> Report:
    if stack != "dev":
        config = {**SECRETS, **config}
    pulumi_stack = PulumiStack(stack, tmp_path / f"state-{stack}.json", config,
                               policy_pack=PACK, program=program)
    return pulumi_stack.preview(digest=False)


def violations(report: Report) -> str:
    assert report.exit_code != 0, report.output[-3000:]
    return report.output


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_shipped_stacks_pass(stack: str, tmp_path: Path) -> None:
    report = policy_preview(stack, tmp_path)
    assert report.exit_code == 0, report.output[-4000:]
    assert "mandatory" not in report.output


def test_config_that_breaks_a_policy_fails_the_preview(tmp_path: Path) -> None:
    output = violations(policy_preview("staging", tmp_path, allowDataLoss=True,
                                       expectedRows=200_000, vectorIndexMethod="none"))
    assert "[mandatory]  no-data-loss-outside-dev" in output
    assert "table public.memories: allowDataLoss is on for stack 'staging'" in output
    assert "[mandatory]  vector-index-when-large" in output
    assert ("table public.memories: expectedRows is 200000 (at least 100000), but no hnsw "
            "or ivfflat index") in output
    broken = {"no-data-loss-outside-dev", "vector-index-when-large"}
    for name in DESCRIPTIONS.keys() - broken:
        assert f"]  {name}" not in output


def test_program_changes_that_break_a_policy_fail_the_preview(tmp_path: Path) -> None:
    output = violations(policy_preview("prod", tmp_path, program=BROKEN_PROGRAM))
    expected = {
        "protect-prod-and-supabase": "table public.memories: not protected on stack 'prod'",
        "ef-search-covers-limit": (f"settings of role mem0_app: hnsw.ef_search is 40, below "
                                   f"mem0's LIMIT {DEFAULT_SEARCH_LIMIT}"),
        "row-security-forced": ("table public.memory_history: row-level security is not "
                                "enabled and forced"),
        "app-role-never-owns": "grants the app role 'mem0_app' TRIGGER, TRUNCATE on TABLE "
                               "public.memories",
        "secrets-only-as-secrets": "role mem0_app: input 'connection' holds a credential in "
                                   "plain text",
    }
    for name, message in expected.items():
        assert f"[mandatory]  {name}" in output, name
        assert DESCRIPTIONS[name] in output
        assert message in output, message
    assert "role mem0_app: input 'password' holds a credential in plain text" in output
    # Only the roles' inputs were made plain: every other connection stays a secret.
    assert "input 'connection'" not in output.replace("role mem0_app: input 'connection'", "")
    for name in DESCRIPTIONS.keys() - expected.keys():
        assert f"]  {name}" not in output
