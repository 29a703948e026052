"""The project's command line: `python -m components <command> ...`.

Each sub-command is one `Command` in `COMMANDS`: its name, help, the function that adds
its arguments and the handler that runs it; a new command is one more line there.

Exit codes are the one table in components/errors.py (`ExitCode`): a handler returns one,
and every error a command reports derives from `Mem0InfraError`, which `main` catches
once, prints as `error: <message>` and turns into its `exit_code`. Any other exception is
a bug and propagates with its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from components import audit, backup, bench, connections, dev, forget, plan, rlsdebug
from components.checks import command as checks
from components.checks.core import Phase
from components.errors import ExitCode, Mem0InfraError
from components.migrate import command as migrate
from components.render import render_json, render_script
from components.settings import command as settings_command
from components.stackfile import command_settings

__all__ = ["COMMANDS", "Command", "main"]

Handler = Callable[[argparse.Namespace], int]

@dataclass(frozen=True)
class Command:
    """One sub-command: what `--help` lists, its arguments, and what runs it."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Handler


def _render_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--project-dir", type=Path, default=None,
                        help="directory holding Pulumi.yaml (default: found from the cwd)")
    parser.add_argument("--output", "-o", type=Path, default=None,
                        help="write to this file instead of standard output")
    parser.add_argument("--json", action="store_true",
                        help="print the objects (key, kind, SQL, notes) and the script as "
                             "JSON")


def _render(args: argparse.Namespace) -> int:
    settings = command_settings(args)
    script = (json.dumps(render_json(settings), indent=2) + "\n" if args.json
              else render_script(settings))
    if args.output:
        args.output.write_text(script, encoding="utf-8")
    else:
        sys.stdout.write(script)
    return ExitCode.OK


def _phase(phase: Phase) -> Command:
    return Command(phase, checks.HELP[phase], checks.add_arguments, checks.command)


COMMANDS: tuple[Command, ...] = (
    Command("render", "print the stack's complete SQL as a psql script (needs no secret)",
            _render_arguments, _render),
    Command("bench", "time mem0's SQL on the stack's schema, built in a scratch schema of "
                     "the database given by --dsn (dropped afterwards)",
            bench.add_arguments, bench.command),
    Command("audit", "read-only security audit of the database given by --dsn: row-level "
                     "security, privileges, functions, views, extensions, declared objects",
            audit.add_arguments, audit.command),
    Command("backup", "write the stack's data tables (one consistent snapshot, as the "
                      "service role) to a file: full, one user's, or changed since a time",
            backup.add_backup_arguments, backup.backup_command),
    Command("backup-prune", "delete this project's backups older than N days from a "
                            "directory or s3:// prefix, never a stack's newest",
            backup.add_prune_arguments, backup.prune_command),
    Command("restore", "upsert a backup file or an in-database snapshot into the stack's "
                       "tables, in one transaction, after checking it (never deletes)",
            backup.add_restore_arguments, backup.restore_command),
    Command("forget", forget.HELP, forget.add_arguments, forget.command),
    Command("connections", connections.HELP, connections.add_arguments, connections.command),
    *(_phase(phase) for phase in checks.PHASES),
    Command("plan", plan.HELP, plan.add_arguments, plan.command),
    Command("migrate", migrate.HELP, migrate.add_arguments, migrate.command),
    Command("rls", rlsdebug.HELP, rlsdebug.add_arguments, rlsdebug.command),
    Command("dev", "start, stop or show the embedded server of a stack with target "
                   "embedded (it keeps running between commands)",
            dev.add_arguments, dev.command),
    Command("settings", settings_command.HELP,
            settings_command.add_arguments, settings_command.command),
)


def _parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components",
        description="mem0infra: render, check and operate the Mem0 PostgreSQL backend.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        sub = subparsers.add_parser(command.name, help=command.help)
        command.add_arguments(sub)
        sub.set_defaults(handler=command.handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except Mem0InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code

