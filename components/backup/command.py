"""The `backup` and `restore` commands: arguments, settings, and exit codes.

Exit codes as for every command (components/errors.py): OK done; FAILED the restore
refused the backup (not a backup, corrupt, truncated, checksums or layout that disagree;
nothing changed), said in its own words rather than as `error:`; UNUSABLE could not run
(arguments, settings, no database, a role that cannot act as the service role, no such
file or snapshot).
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime
from pathlib import Path

from components.backup.bulk import MAINTENANCE_WORK_MEM
from components.backup.common import BackupError, CommandProgress, RestoreRefused
from components.backup.dump import BackupRequest, run_backup
from components.backup.report import backup_text, restore_text
from components.backup.restore import RestoreRequest, run_restore
from components.backup.tables import check_profile
from components.connection import command_dsn
from components.errors import ExitCode
from components.settings import Settings
from components.stackfile import add_stack_arguments, load_stack_settings

_SIZE = re.compile(r"[1-9][0-9]*(kB|MB|GB|TB)")
ROLE = ("a role that is the stack's service role, a member of it or a superuser (the "
        "command acts as the service role)")


def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser, ROLE)
    parser.add_argument("--output", "-o", type=Path, required=True,
                        help="the backup file to write (a gzip-compressed tar)")
    parser.add_argument("--user-id", default=None,
                        help="only this user's rows (every table's user_id)")
    parser.add_argument("--since", default=None, metavar="TIMESTAMP",
                        help="incremental: only rows changed at or after this ISO 8601 time "
                             "with a time zone (e.g. the previous backup's taken_at)")


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser, ROLE)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("file", nargs="?", type=Path, default=None,
                        help="a file written by `backup`")
    source.add_argument("--snapshot", type=int, default=None, metavar="ID",
                        help="an in-database snapshot (mem0_backup) instead of a file")
    parser.add_argument("--user-id", default=None,
                        help="restore only this user's rows")
    parser.add_argument("--dry-run", action="store_true",
                        help="report what would be inserted, updated and left alone, then "
                             "roll back")
    parser.add_argument("--include-erased", action="store_true",
                        help="restore rows of users, agents or runs erased by `forget` "
                             "since the backup (refused by default)")
    parser.add_argument("--maintenance-work-mem", type=_memory, default=MAINTENANCE_WORK_MEM,
                        metavar="SIZE",
                        help="memory for building a vector index again after a restore into "
                             "an empty table, when the server's maintenance_work_mem is "
                             f"lower (default {MAINTENANCE_WORK_MEM}; e.g. 256MB on a small "
                             "server)")


def _memory(text: str) -> str:
    """A size as PostgreSQL's memory settings take it: 512MB, 1GB, 65536kB."""
    if not _SIZE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 512MB or 1GB")
    return text


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_stack_settings(args.stack, args.project_dir)
    check_profile(settings)
    for warning in settings.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return settings


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        since = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BackupError(f"--since: {text!r} is not an ISO 8601 time ({exc})") from exc
    if since.tzinfo is None:
        raise BackupError(f"--since: {text!r} has no time zone; give one (e.g. "
                          f"{text}+00:00), as a backup's taken_at does")
    return since


def backup_command(args: argparse.Namespace) -> int:
    dsn = command_dsn(args.dsn, "backup", "back up")
    request = BackupRequest(args.output, args.user_id, _since(args.since))
    result = run_backup(dsn, _settings(args), request, CommandProgress(sys.stderr, "backup"))
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    sys.stdout.write(backup_text(result))
    return ExitCode.OK


def restore_command(args: argparse.Namespace) -> int:
    if (args.file is None) == (args.snapshot is None):
        raise BackupError("restore needs exactly one source: a backup FILE or --snapshot ID")
    dsn = command_dsn(args.dsn, "restore", "restore into")
    request = RestoreRequest(args.file, args.snapshot, args.user_id, args.dry_run,
                             args.include_erased, args.maintenance_work_mem)
    try:
        result = run_restore(dsn, _settings(args), request,
                             CommandProgress(sys.stderr, "restore"))
    except RestoreRefused as exc:
        print(f"restore refused, nothing was changed: {exc}", file=sys.stderr)
        return exc.exit_code
    sys.stdout.write(restore_text(result))
    skipped = sum(len(o.skipped) for o in result.outcomes)
    if skipped:
        print(f"warning: {skipped} rows of the backup were not restored (listed above)",
              file=sys.stderr)
    return ExitCode.OK
