"""Pulumi.yaml's `config:` block, rendered from the declarations.

The block types every key, gives its default and description; the program still parses
every value itself (`parse.py`), because Pulumi's schema knows no allowed values, bounds
or secrets without defaults. tests/unit/test_project_files.py fails when the file's block
differs from `pulumi_config_block()`; `python -m components settings --pulumi-yaml
--write` rewrites it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from components.settings.spec import SETTINGS, ConfigType, SettingSpec
from components.stackfile import StackFileError

__all__ = ["CONFIG_HEADER", "pulumi_config_block", "rewrite_pulumi_yaml", "with_config_block"]

CONFIG_HEADER = "config:\n"
# Why the secret keys are typed as plain strings: kept above the keys in the file.
_SECRET_NOTE = """\
  # Secret keys (databaseUrl, the role passwords, poolerUrl) carry no `secret: true`: the
  # engine refuses a secret key whose default applies ("must be encrypted"), and the dev
  # stack needs none. The program refuses them in plain text instead (docs/engine.md).
"""
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")


def _scalar(value: str | int | bool) -> str:
    """A YAML scalar that reads back as `value`: plain where that is unambiguous."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if _PLAIN.fullmatch(value) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


def _entry(spec: SettingSpec) -> str:
    default = spec.default
    if spec.type == ConfigType.INTEGER:
        default = int(default)
    return (f"  {spec.key}:\n"
            f"    type: {spec.type}\n"
            f"    default: {_scalar(default)}\n"
            f"    description: {json.dumps(spec.description, ensure_ascii=False)}\n")


def pulumi_config_block() -> str:
    """The `config:` block of Pulumi.yaml, from `config:` to the end of the file."""
    return CONFIG_HEADER + _SECRET_NOTE + "".join(_entry(spec) for spec in SETTINGS)


def with_config_block(project_yaml: str) -> str:
    """Pulumi.yaml's text with its `config:` block (the rest of the file from that line)
    replaced by the rendered one; the lines above it are kept as written."""
    head, found, _ = project_yaml.partition("\n" + CONFIG_HEADER)
    if not found:
        raise StackFileError("Pulumi.yaml: no top-level `config:` line; allowed: a file "
                             "whose config block runs from `config:` to the end")
    return head + "\n" + pulumi_config_block()


def rewrite_pulumi_yaml(path: Path) -> bool:
    """Rewrite the file's `config:` block; True when it changed."""
    before = path.read_text(encoding="utf-8")
    after = with_config_block(before)
    if after != before:
        path.write_text(after, encoding="utf-8")
    return after != before
