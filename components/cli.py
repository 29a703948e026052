"""The project's command line: `python -m components <command> ...`.

Exit codes: 0 success, 1 a check failed (for `restore`: the backup failed its
verification, nothing changed), 2 could not run (bad arguments or settings); `bench`
returns 130 when interrupted (after dropping its scratch schema).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from components import audit, backup, bench, dev
from components.checks import command as checks
from components.checks.core import CheckRunError
from components.connection import CommandDsnError
from components.render import render_script
from components.settings import SettingsError
from components.settings import command as settings_command
from components.stackfile import StackFileError, load_stack_settings

EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components",
        description="mem0infra: render, check and operate the Mem0 PostgreSQL backend.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    render = commands.add_parser(
        "render", help="print the stack's complete SQL as a psql script (needs no secret)")
    render.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    render.add_argument("--project-dir", type=Path, default=None,
                        help="directory holding Pulumi.yaml (default: found from the cwd)")
    render.add_argument("--output", "-o", type=Path, default=None,
                        help="write to this file instead of standard output")
    bench.add_arguments(commands.add_parser(
        "bench", help="time mem0's SQL on the stack's schema, built in a scratch schema of "
                      "the database given by --dsn (dropped afterwards)"))
    audit.add_arguments(commands.add_parser(
        "audit", help="read-only security audit of the database given by --dsn: row-level "
                      "security, privileges, functions, views, extensions, declared objects"))
    backup.add_backup_arguments(commands.add_parser(
        "backup", help="write the stack's data tables (one consistent snapshot, as the "
                       "service role) to a file: full, one user's, or changed since a time"))
    backup.add_restore_arguments(commands.add_parser(
        "restore", help="upsert a backup file or an in-database snapshot into the stack's "
                        "tables, in one transaction, after checking it (never deletes)"))
    for phase in checks.PHASES:
        checks.add_arguments(commands.add_parser(phase, help=checks.HELP[phase]))
    dev.add_arguments(commands.add_parser(
        "dev", help="start, stop or show the embedded server of a stack with target "
                    "embedded (it keeps running between commands)"))
    settings_command.add_arguments(commands.add_parser("settings", help=settings_command.HELP))
    return parser


def _render(args: argparse.Namespace) -> int:
    settings = load_stack_settings(args.stack, args.project_dir)
    for warning in settings.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    script = render_script(settings)
    if args.output:
        args.output.write_text(script, encoding="utf-8")
    else:
        sys.stdout.write(script)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "render":
            return _render(args)
        if args.command == "bench":
            return bench.command(args)
        if args.command == "audit":
            return audit.command(args)
        if args.command == "backup":
            return backup.backup_command(args)
        if args.command == "restore":
            return backup.restore_command(args)
        if args.command in checks.PHASES:
            return checks.command(args)
        if args.command == "dev":
            return dev.command(args)
        if args.command == "settings":
            return settings_command.command(args)
    except (SettingsError, StackFileError, CommandDsnError, bench.BenchError, dev.DevError,
            audit.AuditError, backup.BackupError, CheckRunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    return EXIT_UNUSABLE
