"""The project files agree with the one place each truth lives (components/settings/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cli import main
from components.settings import SETTINGS, settings_table_markdown
from components.settings.pulumiyaml import CONFIG_HEADER, pulumi_config_block, with_config_block
from components.stackfile import load_stack_settings, stack_names

REPO = Path(__file__).resolve().parents[2]
PULUMI_TYPES = {"string", "integer", "boolean", "array"}  # Pulumi.yaml's config types


def project() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    return document


def test_pulumi_yaml_declares_every_setting_with_its_type_and_default() -> None:
    declared = project()["config"]
    assert list(declared) == [s.key for s in SETTINGS]
    for spec in SETTINGS:
        entry = declared[spec.key]
        assert entry["type"] in PULUMI_TYPES
        assert entry["type"] == spec.type, spec.key
        assert entry["default"] == spec.default, spec.key
        # The engine refuses `secret: true` with a default (docs/engine.md); the
        # description says so instead, and the program refuses plain-text secrets.
        assert "secret" not in entry, spec.key
        assert ("(secret)" in entry["description"]) == spec.secret, spec.key
        assert entry["description"]


def test_pulumi_yaml_config_block_is_the_rendered_declarations() -> None:
    """Regenerate with `python -m components settings --pulumi-yaml --write`."""
    text = (REPO / "Pulumi.yaml").read_text()
    assert text[text.index("\n" + CONFIG_HEADER) + 1:] == pulumi_config_block()
    assert with_config_block(text) == text
    declared = project()["config"]
    for spec in SETTINGS:
        assert declared[spec.key]["description"] == spec.description, spec.key


def test_the_rendered_block_reads_back_as_the_declarations() -> None:
    block = yaml.safe_load(pulumi_config_block())["config"]
    assert block == {s.key: {"type": str(s.type), "default": s.default,
                             "description": s.description} for s in SETTINGS}


def test_the_settings_command_prints_the_block_and_the_table(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings", "--pulumi-yaml"]) == 0
    assert capsys.readouterr().out == pulumi_config_block()
    assert main(["settings", "--readme-table"]) == 0
    assert capsys.readouterr().out == settings_table_markdown() + "\n"


def test_pulumi_yaml_runs_python_from_the_project_venv_and_refreshes() -> None:
    doc = project()
    assert doc["name"] == "mem0infra"
    assert doc["runtime"] == {"name": "python",
                              "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    assert doc["options"] == {"refresh": "always"}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_stack_files_parse(stack: str) -> None:
    settings = load_stack_settings(stack, REPO)
    assert settings.stack == stack
    if stack == "dev":
        assert settings.target == "embedded" and not settings.database_url_encrypted
    else:
        assert settings.target == "supabase" and settings.database_url_encrypted
    assert settings.protect == settings.protects_data == (stack != "dev")


def test_the_sdk_pin_is_the_release_of_the_cli_that_install_pulumi_builds() -> None:
    # One release for the engine and the SDK (docs/engine.md): tools/pulumi/go.mod's
    # requirement of pkg/v3 and sdk/v3, and requirements.txt's pulumi pin.
    go_mod = (REPO / "tools/pulumi/go.mod").read_text()
    required = {line.split()[0]: line.split()[1] for line in go_mod.splitlines()
                if line.strip().startswith("github.com/pulumi/pulumi/")}
    pins = [line for line in (REPO / "requirements.txt").read_text().splitlines()
            if line.startswith("pulumi==")]
    assert pins == [f"pulumi=={required['github.com/pulumi/pulumi/pkg/v3'][1:]}"]
    assert required["github.com/pulumi/pulumi/sdk/v3"] == required[
        "github.com/pulumi/pulumi/pkg/v3"]


def test_there_are_exactly_the_documented_stacks() -> None:
    assert stack_names(REPO) == ["dev", "prod", "staging"]


def test_readme_settings_table_matches_the_code() -> None:
    assert settings_table_markdown() in (REPO / "README.md").read_text()


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "`bash scripts/test.sh`" in readme and "`bash scripts/up.sh`" in readme
    assert "\nbash scripts/test.sh\n" in ci
