"""The `forget` command: arguments, settings, and exit codes.

Exit codes as for every command (components/errors.py): OK removed (or, with --dry-run,
counted and rolled back); UNUSABLE could not run (arguments, settings, no database, a
role that cannot act as the service role, a stack without the forget function), and
nothing was removed.
"""

from __future__ import annotations

import argparse
import sys

from components.connection import command_dsn
from components.erasure import PersonKind
from components.errors import ExitCode
from components.forget.report import forget_json, forget_text
from components.forget.run import ForgetError, ForgetRequest, run_forget
from components.stackfile import add_stack_arguments, command_settings

HELP = ("erase a user, agent or run from every table of the stack (memories, entities, "
        "edges, history, snapshots) in one transaction, leaving a record without content")
ROLE = ("a role that is the stack's service role, a member of it or a superuser (the "
        "command acts as the service role)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser, ROLE)
    who = parser.add_mutually_exclusive_group(required=True)
    for kind in PersonKind:
        who.add_argument(f"--{kind}-id", dest=f"{kind}_id", default=None, metavar="ID",
                         help=f"erase this {kind} id (exactly as mem0 stores it)")
    parser.add_argument("--dry-run", action="store_true",
                        help="count what would be removed, then roll back")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def command(args: argparse.Namespace) -> int:
    kind, subject = next((k, getattr(args, f"{k}_id")) for k in PersonKind
                         if getattr(args, f"{k}_id") is not None)
    if not subject.strip():
        raise ForgetError(f"--{kind}-id: the id is empty; give the {kind} id exactly as mem0 "
                          "stores it")
    settings = command_settings(args)
    dsn = command_dsn(args.dsn, settings, "forget", "erase from")
    if sys.stderr.isatty() and not args.json:
        print(f"[forget] erasing the {kind} from every table in one transaction...",
              file=sys.stderr)
    result = run_forget(dsn, settings, ForgetRequest(kind, subject, args.dry_run))
    sys.stdout.write(forget_json(result) if args.json else forget_text(result))
    return ExitCode.OK
