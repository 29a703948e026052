"""The `backup` and `restore` commands: arguments, settings, and exit codes
(`backup-prune` is prune.py's).

Exit codes as for every command (components/errors.py): OK done; FAILED the restore
refused the backup (not a backup, corrupt, truncated, checksums or layout that disagree;
nothing changed), said in its own words rather than as `error:`; UNUSABLE could not run
(arguments, settings, no database, a role that cannot act as the service role, no such
file or snapshot).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime

from components.backup.bulk import MAINTENANCE_WORK_MEM
from components.backup.common import BackupError, CommandProgress, RestoreRefused
from components.backup.destinations import parse_destination
from components.backup.dump import BackupRequest, run_backup
from components.backup.encryption import PASSPHRASE_ENV, passphrase_from_env
from components.backup.report import backup_json, backup_text, restore_text
from components.backup.restore import RestoreRequest, run_restore
from components.backup.tables import check_profile
from components.connection import command_dsn
from components.errors import ExitCode
from components.settings import Settings
from components.stackfile import add_stack_arguments, command_settings

_SIZE = re.compile(r"[1-9][0-9]*(kB|MB|GB|TB)")
ROLE = ("a role that is the stack's service role, a member of it or a superuser (the "
        "command acts as the service role)")


def _key_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", default=None, metavar="URL",
                        help="for s3:// URLs: an S3-compatible store's endpoint (default: "
                             "AWS_ENDPOINT_URL, else AWS); credentials from the usual AWS "
                             "environment variables")
    parser.add_argument("--passphrase-env", default=None, metavar="NAME",
                        help=f"the environment variable holding the encryption passphrase "
                             f"(default {PASSPHRASE_ENV})")


def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser, ROLE)
    parser.add_argument("--output", "-o", required=True, metavar="DEST",
                        help="where to write the backup: a file, an existing directory (a "
                             "generated name in it), s3://bucket/prefix/ (the same) or "
                             "s3://bucket/key")
    parser.add_argument("--user-id", default=None,
                        help="only this user's rows (every table's user_id)")
    parser.add_argument("--from", "--since", dest="since", default=None, metavar="TIMESTAMP",
                        help="only rows created or changed at or after this ISO 8601 time "
                             "with a time zone (e.g. the previous backup's taken_at); "
                             "--since is the same")
    parser.add_argument("--to", dest="until", default=None, metavar="TIMESTAMP",
                        help="only rows created or changed before this ISO 8601 time")
    _key_arguments(parser)
    parser.add_argument("--no-encryption", action="store_true",
                        help="write the backup unencrypted even though a passphrase is set")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser, ROLE)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("file", nargs="?", default=None,
                        help="a file or s3://bucket/key written by `backup`")
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
    _key_arguments(parser)


def _memory(text: str) -> str:
    """A size as PostgreSQL's memory settings take it: 512MB, 1GB, 65536kB."""
    if not _SIZE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 512MB or 1GB")
    return text


def _settings(args: argparse.Namespace) -> Settings:
    settings = command_settings(args)
    check_profile(settings)
    return settings


def _time(text: str | None, argument: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BackupError(f"{argument}: {text!r} is not an ISO 8601 time ({exc})") from exc
    if moment.tzinfo is None:
        raise BackupError(f"{argument}: {text!r} has no time zone; give one (e.g. "
                          f"{text}+00:00), as a backup's taken_at does")
    return moment


def _unencrypted_warning(location: str, explicit: bool) -> str:
    why = ("--no-encryption was given" if explicit else
           f"no passphrase is set ({PASSPHRASE_ENV} or --passphrase-env NAME)")
    return ("WARNING: THIS BACKUP IS NOT ENCRYPTED (" + why + "): anyone who can read "
            f"{location} can read every memory in it")


def backup_command(args: argparse.Namespace) -> int:
    settings = _settings(args)
    dsn = command_dsn(args.dsn, settings, "backup", "back up")
    since, until = _time(args.since, "--from"), _time(args.until, "--to")
    if since is not None and until is not None and since >= until:
        raise BackupError(f"--from {args.since} is not before --to {args.until}: the window "
                          "is empty")
    passphrase = None if args.no_encryption else passphrase_from_env(args.passphrase_env)
    destination = parse_destination(args.output, args.endpoint_url)  # checked before connecting
    request = BackupRequest(args.output, args.user_id, since, until, args.endpoint_url,
                            passphrase)
    result = run_backup(dsn, settings, request,
                        CommandProgress(sys.stderr, "backup"))
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not result.encrypted:
        print(_unencrypted_warning(destination.location, args.no_encryption), file=sys.stderr)
    if args.json:
        json.dump(backup_json(result), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(backup_text(result))
    return ExitCode.OK


def restore_command(args: argparse.Namespace) -> int:
    if (args.file is None) == (args.snapshot is None):
        raise BackupError("restore needs exactly one source: a backup FILE or --snapshot ID")
    settings = _settings(args)
    dsn = command_dsn(args.dsn, settings, "restore", "restore into")
    passphrase = passphrase_from_env(args.passphrase_env) if args.file else None
    request = RestoreRequest(args.file, args.snapshot, args.user_id, args.dry_run,
                             args.maintenance_work_mem, args.endpoint_url, passphrase,
                             include_erased=args.include_erased)
    try:
        result = run_restore(dsn, settings, request,
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
