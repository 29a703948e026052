"""The `migrate` command: sub-commands export | import | status | resume | rollback |
verify, their arguments, output (text, or `--json`) and exit codes.

Exit codes as for every command (components/errors.py): OK done (verify: every check
passed); FAILED invalid records (nothing written), a verify check failed, a rollback refused
because rows were changed since; UNUSABLE could not run (arguments, settings, no database,
a role that cannot act as the service role, no such run).

The sources, the validator, the embedder and `export` are the sources side's modules
(components/migrate/sources.py, validate.py, embed.py, export.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from components.backup.common import CommandProgress
from components.connection import command_dsn
from components.errors import ExitCode
from components.migrate import embed, export, sources, validate
from components.migrate.importer import ImportInvalid, ImportRequest, resume_import, run_import
from components.migrate.records import Embedder
from components.migrate.rollback import RollbackRefused, run_rollback
from components.migrate.staging import Checker
from components.migrate.status import run_status, status_text
from components.migrate.store import DEFAULT_BATCH_SIZE
from components.migrate.verify import run_verify
from components.settings import Settings
from components.stackfile import add_stack_arguments, command_settings, positive_int

__all__ = ["HELP", "add_arguments", "command"]

HELP = ("bring memories into the stack (from the Mem0 Platform, a mem0 pgvector table or a "
        "vecs collection) with checkpoints, resume, rollback and verify")
ROLE = ("a role that is the stack's service role, a member of it or a superuser (migrate "
        "acts as the service role)")


def _common(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser, ROLE)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    export.add_arguments(sub.add_parser(
        "export", help="export every memory from the Mem0 Platform to a JSON Lines file "
                       "(resumable)"))
    imp = sub.add_parser("import", help="validate, stage and write a source into the stack "
                                        "in checkpointed batches")
    _common(imp)
    source = imp.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", type=Path, default=None,
                        help="a JSON Lines file written by `migrate export`")
    source.add_argument("--from-table", metavar="SCHEMA.TABLE", default=None,
                        help="a table mem0's pgvector provider made (id, vector, payload)")
    source.add_argument("--from-vecs", metavar="SCHEMA.COLLECTION", default=None,
                        help="a vecs collection mem0's supabase provider made")
    imp.add_argument("--source-dsn", default=None,
                     help="postgresql:// URL of the source table's database (default: --dsn)")
    imp.add_argument("--embedder", type=Path, default=None, metavar="FILE",
                     help="the application's mem0 embedder config (JSON or YAML): embeds "
                          "records without a vector or with other dimensions")
    imp.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE,
                     help=f"records per batch transaction (default {DEFAULT_BATCH_SIZE})")
    imp.add_argument("--dry-run", action="store_true",
                     help="every check and the per-user counts; nothing written")
    imp.add_argument("--skip-invalid", action="store_true",
                     help="import the valid records; the invalid ones are kept in the run "
                          "as skipped, with their reasons")
    imp.add_argument("--no-bulk", action="store_true",
                     help="into an empty table too, keep the vector index and write row by "
                          "row (by default it is dropped and built again after the load)")
    status = sub.add_parser("status", help="runs, newest first (or one): state, batches, "
                                           "written, skipped, rate, time left")
    _common(status)
    status.add_argument("run", nargs="?", default=None, help="a run id (default: every run)")
    resume = sub.add_parser("resume", help="finish an interrupted run: every record "
                                           "written exactly once")
    _common(resume)
    resume.add_argument("run", help="the run id")
    resume.add_argument("--source-dsn", default=None,
                        help="postgresql:// URL of the source table's database "
                             "(default: --dsn)")
    resume.add_argument("--embedder", type=Path, default=None, metavar="FILE",
                        help="the embedder config (default: the file the import was given)")
    rollback = sub.add_parser("rollback", help="the memories table as before the run, in "
                                               "one transaction")
    _common(rollback)
    rollback.add_argument("run", help="the run id")
    rollback.add_argument("--force", action="store_true",
                          help="roll back even rows changed since the run wrote them")
    verify = sub.add_parser("verify", help="counts per user, each memory its own text's top "
                                           "hit, a sample of vectors equal the source's")
    _common(verify)
    verify.add_argument("run", help="the run id")
    verify.add_argument("--embedder", type=Path, default=None, metavar="FILE",
                        help="embed each memory's text again for the search check "
                             "(default: search with the stored vector, and say so)")
    verify.add_argument("--sample", type=positive_int, default=100,
                        help="vectors compared with the source's (default 100)")


def _embedder(path: Path | None, settings: Settings) -> Embedder | None:
    if path is None:
        return None
    embedder: Embedder = embed.load_embedder(path, settings.dimensions)
    return embedder


def _checker(settings: Settings, can_embed: bool) -> Checker:
    checker: Checker = validate.Validator(settings.dimensions, can_embed)
    return checker


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n" if args.json else text)


def _import(args: argparse.Namespace, dsn: str, settings: Settings) -> int:
    source = sources.source_from_arguments(
        args.file, args.from_table, args.from_vecs, args.source_dsn or dsn)
    embedder = _embedder(args.embedder, settings)
    options: dict[str, Any] = {"embedder": str(args.embedder.resolve())} if args.embedder else {}
    if args.source_dsn:
        options["source_dsn_given"] = True  # the URL itself (a secret) is never stored
    request = ImportRequest(source, _checker(settings, embedder is not None), embedder,
                            args.batch_size, args.dry_run, args.skip_invalid, options,
                            bulk=not args.no_bulk)
    try:
        result = run_import(dsn, settings, request, CommandProgress(sys.stderr, "migrate"))
    except ImportInvalid as exc:
        for problem in exc.problems:
            print(f"invalid: {problem.origin}: {problem.reason}", file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        if args.json:
            _print(args, {"invalid": [vars(p) for p in exc.problems]}, "")
        return exc.exit_code
    lines = []
    if result.dry_run:
        lines.append(f"dry run: {result.records} valid records, {len(result.skipped)} "
                     f"skipped, {result.to_embed} to embed; nothing was written")
    else:
        lines.append(f"run {result.run_id} done: {result.records} records in "
                     f"{result.batches} batches: inserted {result.inserted}, updated "
                     f"{result.updated}, unchanged {result.unchanged} (staged in "
                     f"{result.stage_s:.1f}s, applied in {result.apply_s:.1f}s)")
        lines.append(f"  {result.write_path}")
    lines.extend(f"skipped: {p.origin}: {p.reason}" for p in result.skipped)
    for user, c in sorted(result.per_user.items()):
        lines.append(f"  {user}: {c.records} records" + (
            f", would insert {c.insert}, update {c.update}, leave {c.unchanged} unchanged"
            if result.dry_run else ""))
    _print(args, result.as_json(), "\n".join(lines) + "\n")
    return ExitCode.OK


def _resume(args: argparse.Namespace, dsn: str, settings: Settings) -> int:
    [status] = run_status(dsn, settings, args.run)
    path = args.embedder or (Path(status.run.options["embedder"])
                             if status.run.options.get("embedder") else None)
    embedder = _embedder(path, settings)
    source_dsn = args.source_dsn or dsn
    result = resume_import(
        dsn, settings, args.run, lambda spec: sources.open_source(spec, source_dsn),
        lambda: _checker(settings, embedder is not None), embedder,
        CommandProgress(sys.stderr, "migrate"))
    _print(args, result.as_json(),
           f"run {args.run} done: {result.batches} more batches: inserted {result.inserted},"
           f" updated {result.updated}, unchanged {result.unchanged}\n")
    return ExitCode.OK


def command(args: argparse.Namespace) -> int:
    if args.action == "export":
        code: int = export.command(args)
        return code
    settings = command_settings(args)
    dsn = command_dsn(args.dsn, settings, "migrate", "migrate into")
    if args.action == "import":
        return _import(args, dsn, settings)
    if args.action == "resume":
        return _resume(args, dsn, settings)
    if args.action == "status":
        statuses = run_status(dsn, settings, args.run)
        _print(args, [s.as_json() for s in statuses], status_text(statuses))
        return ExitCode.OK
    if args.action == "rollback":
        try:
            result = run_rollback(dsn, settings, args.run, args.force,
                                  CommandProgress(sys.stderr, "migrate"))
        except RollbackRefused as exc:
            print(f"rollback refused: {exc}", file=sys.stderr)
            return exc.exit_code
        _print(args, result.as_json(),
               f"run {args.run} rolled back in {result.seconds:.1f}s: deleted "
               f"{result.deleted} inserted rows, restored {result.restored} overwritten "
               f"rows ({result.reinserted} re-inserted), {result.history_marked} history "
               "rows marked rollback"
               + (f"; built again {', '.join(result.rebuilt)}" if result.rebuilt else "")
               + "\n")
        return ExitCode.OK
    assert args.action == "verify"
    verdict = run_verify(dsn, settings, args.run, _embedder(args.embedder, settings),
                         args.sample)
    _print(args, verdict.as_json(), verdict.text())
    return ExitCode.OK if verdict.passed else ExitCode.FAILED
