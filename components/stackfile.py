"""Read a stack's settings straight from `Pulumi.<stack>.yaml`, without the Pulumi CLI.

For the CLI and the tests. `secure:` values cannot be decrypted here; they parse as
`EncryptedValue`, which is enough for everything that needs no connection (render).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

from components.connection import DSN_ENV
from components.errors import ExitCode, Mem0InfraError
from components.settings import PROJECT, EncryptedValue, Settings, parse_settings


class StackFileError(Mem0InfraError, ValueError):
    """A project or stack file is missing or malformed; the message names the file."""

    exit_code = ExitCode.UNUSABLE


def project_dir(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` (default: cwd) holding Pulumi.yaml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    raise StackFileError(f"no Pulumi.yaml in {here} or any parent directory")


def stack_names(directory: Path) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in directory.glob("Pulumi.*.yaml"))


def read_stack_config(stack: str, directory: Path | None = None) -> dict[str, object]:
    """The stack file's `mem0infra:` settings, keys without the prefix."""
    directory = directory or project_dir()
    path = directory / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = ", ".join(stack_names(directory)) or "none"
        raise StackFileError(f"stack {stack!r}: no file {path.name} in {directory}; "
                             f"stacks with a file: {known}")
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config = document.get("config") or {}
    if not isinstance(config, Mapping):
        raise StackFileError(f"{path.name}: `config` must be a mapping")
    prefix = f"{PROJECT}:"
    raw: dict[str, object] = {}
    for key, value in config.items():
        if not str(key).startswith(prefix):
            continue  # other namespaces (e.g. postgresql:sslmode) are not ours
        if isinstance(value, Mapping) and "secure" in value:
            value = EncryptedValue()
        raw[str(key)[len(prefix):]] = value
    return raw


def load_stack_settings(stack: str, directory: Path | None = None,
                        overrides: Mapping[str, object] | None = None) -> Settings:
    raw = read_stack_config(stack, directory)
    raw.update(overrides or {})
    return parse_settings(raw, stack)


def command_settings(args: argparse.Namespace) -> Settings:
    """The settings of `--stack` (in `--project-dir`) for a command, its warnings printed
    to standard error once."""
    settings = load_stack_settings(args.stack, args.project_dir)
    for warning in settings.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return settings


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (argparse names the argument)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def add_stack_arguments(parser: argparse.ArgumentParser, role: str) -> None:
    """--stack, --project-dir and --dsn, as every command on a live database takes them;
    `role` says what the --dsn role must be able to do."""
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--project-dir", type=Path, default=None,
                        help="directory holding Pulumi.yaml (default: found from the cwd)")
    parser.add_argument("--dsn", default=None,
                        help=f"postgresql:// URL of {role} (default: ${DSN_ENV}); the "
                             "embedded server is never started")
