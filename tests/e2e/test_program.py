"""The real program with each real stack file, previewed by the real Pulumi CLI.

A first preview calls only the providers' `check` and `diff`, which need no connection, so
the staging and prod stacks preview against a Supabase URL that does not exist.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.model import build_model
from components.stackfile import load_stack_settings
from tests.support.engine import REPO, PulumiStack, Report

PASSWORD = "Tr0ub4dor-and-3"
APP_PASSWORD = "correct-horse-battery-staple"
URL = f"postgresql://deployer:{PASSWORD}@db.abcdefgh.supabase.co:5432/postgres"
pytestmark = pytest.mark.e2e

SQL_OBJECT = "pulumi-python:dynamic/mem0:SqlObject"
CHECK_RUN = "pulumi-python:dynamic/mem0:CheckRun"


def preview(stack: str, tmp_path: Path, **config: object) -> Report:
    if stack != "dev":
        config.setdefault("databaseUrl", URL)
        config.setdefault("appRolePassword", APP_PASSWORD)
    return PulumiStack(stack, tmp_path / "state.json", config).preview().raise_for_error()


def by_type(report: Report) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for resource in report.resources:
        found.setdefault(resource["type"], []).append(resource)
    return found


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_each_stack_declares_the_expected_parented_resources(stack: str, tmp_path: Path) -> None:
    report = preview(stack, tmp_path)
    types = by_type(report)
    assert len(types["mem0:index:Mem0Backend"]) == 1
    for family in ("Extensions", "Roles", "MemoryTables", "Functions", "Indexes", "Triggers",
                   "Grants", "SearchSettings"):
        assert len(types[f"mem0:index:{family}"]) == 1
    settings = load_stack_settings(stack, REPO)
    objects = {(r["inputs"]["kind"], r["inputs"]["name"]) for r in types[SQL_OBJECT]}
    assert objects == {(s.kind, s.name) for s in build_model(settings)}
    assert ("pulumi-python:dynamic/mem0:EmbeddedPostgres" in types) == (stack == "dev")
    urns = {r["urn"]: r for r in report.resources}
    for resource in report.resources:
        assert resource["parent"], f"{resource['urn']} has no parent"
        if resource["type"] != "mem0:index:Mem0Backend":
            parent_type = urns[resource["parent"]]["type"]
            assert parent_type.startswith("mem0:index:"), resource["urn"]
    # a first preview creates every custom resource and touches nothing else
    assert {o["op"] for o in report.operations} == {"create"}
    assert len(report.operations) == len([r for r in report.resources if r["custom"]])


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_secrets_are_secret_and_never_in_ddl(stack: str, tmp_path: Path) -> None:
    report = preview(stack, tmp_path)
    for resource in by_type(report)[SQL_OBJECT]:
        role = resource["inputs"]["kind"] == "role"
        assert sorted(resource["secret_inputs"]) == (["connection", "password"] if role
                                                     else ["connection"])
        visible = {k: v for k, v in resource["inputs"].items()
                   if k not in ("connection", "password")}
        assert PASSWORD not in json.dumps(visible)
        assert APP_PASSWORD not in json.dumps(visible)
        assert resource["inputs"]["database"] == "db.abcdefgh.supabase.co:5432/postgres"
    checks = by_type(report)[CHECK_RUN]
    assert [r["inputs"]["phase"] for r in checks] == ["preflight", "validate"]
    for resource in checks:
        # the app role's password: for the tls check's real login as the app role
        assert sorted(resource["secret_inputs"]) == ["appRolePassword", "connection"]
        visible = {k: v for k, v in resource["inputs"].items()
                   if k not in ("connection", "appRolePassword")}
        assert PASSWORD not in json.dumps(visible)
        assert APP_PASSWORD not in json.dumps(visible)
    for resource in report.resources:
        if resource["type"] not in (SQL_OBJECT, CHECK_RUN):
            assert PASSWORD not in json.dumps(resource["inputs"])
            assert APP_PASSWORD not in json.dumps(resource["inputs"])


def test_supabase_stacks_put_pgvector_in_extensions(tmp_path: Path) -> None:
    [extension] = [r for r in by_type(preview("prod", tmp_path))[SQL_OBJECT]
                   if r["inputs"]["kind"] == "extension"]
    assert extension["inputs"]["ddl"] == (
        "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA extensions;")


def test_prod_protects_tables_and_dev_does_not(tmp_path: Path) -> None:
    for stack, protected in (("prod", True), ("dev", False)):
        objects = by_type(preview(stack, tmp_path))[SQL_OBJECT]
        protected_kinds = {r["inputs"]["kind"] for r in objects if r["protect"]}
        assert protected_kinds == ({"table"} if protected else set())
        assert all(r["protect"] for r in objects if r["inputs"]["kind"] == "table") == protected


def test_indexes_go_with_their_table_and_wait_for_it(tmp_path: Path) -> None:
    objects = {(r["inputs"]["kind"], r["inputs"]["name"]): r
               for r in by_type(preview("dev", tmp_path))[SQL_OBJECT]
               if r["inputs"]["schema"] != "mem0_backup"}  # its tables repeat the names
    table, extension = objects[("table", "memories")], objects[("extension", "vector")]
    index = objects[("index", "memories_vector_idx")]
    assert index["deleted_with"] == table["urn"]
    assert table["urn"] in index["dependencies"]
    assert extension["urn"] in table["dependencies"]
    # a trigger waits for its table and its function, and is dropped before the function
    trigger = objects[("trigger", "memories_history")]
    assert {table["urn"], objects[("function", "mem0_record_history")]["urn"]} <= set(
        trigger["dependencies"])
    assert not trigger.get("deleted_with")


def test_dev_stack_connects_through_its_embedded_database(tmp_path: Path) -> None:
    report = preview("dev", tmp_path)
    [embedded] = by_type(report)["pulumi-python:dynamic/mem0:EmbeddedPostgres"]
    assert embedded["inputs"]["data_dir"] == ".pgdata/dev"
    for resource in by_type(report)[SQL_OBJECT]:
        assert resource["inputs"]["database"] == "embedded:.pgdata/dev"
        assert embedded["urn"] in resource["dependencies"]


def test_bad_stack_settings_fail_the_program_with_the_key_named(tmp_path: Path) -> None:
    report = PulumiStack("dev", tmp_path / "s.json", {"tenancy": "everyone"}).preview()
    assert report.error and "tenancy: 'everyone' is not allowed; allowed: user, org, service" \
        in report.error
    assert report.resources == []


def test_stack_outputs_name_the_tables_and_target_without_secrets(tmp_path: Path) -> None:
    report = preview("staging", tmp_path)
    assert report.outputs["target"] == "supabase"
    assert report.outputs["tables"] == ["memories", "memories_entities", "memory_history",
                                        "memory_relationships"]
    assert report.outputs["mem0Config"]["vector_store"]["config"]["embedding_model_dims"] == 1536
    assert report.secret_outputs == ["mem0Config.vector_store.config.connection_string"]
    assert APP_PASSWORD not in json.dumps(report.outputs["poolerGuidance"])


def test_typescript_profile_exports_the_ts_sdks_settings(tmp_path: Path) -> None:
    report = preview("staging", tmp_path, clientProfile="typescript")
    assert report.outputs["tables"] == ["memories", "memory_history", "memory_migrations"]
    store = report.outputs["mem0Config"]["vectorStore"]
    assert store["provider"] == "supabase" and store["config"]["tableName"] == "memories"
