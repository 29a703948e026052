"""The `rls` command: sub-commands whoami | as-user | explain, their arguments, output (text,
or `--json`) and exit codes.

Exit codes as for every command (components/errors.py): whoami and as-user OK when they ran
(as-user FAILED when the database refused the statement, a write in the READ ONLY
transaction included); explain OK when the role may SELECT the row, FAILED when it may not,
UNUSABLE when the attempt could not tell; UNUSABLE for bad arguments, no database, a role
the deployer cannot act as.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from components.connection import command_dsn
from components.errors import ExitCode
from components.kinds.base import Kind
from components.model import build_model
from components.rlsdebug.asuser import run_as_user
from components.rlsdebug.explain import run_explain, stack_tables
from components.rlsdebug.identity import Identity, memory_id, validate_role
from components.rlsdebug.session import RlsDebugError, debug_session
from components.rlsdebug.whoami import run_whoami
from components.settings import Settings
from components.stackfile import add_stack_arguments, command_settings, positive_int

__all__ = ["HELP", "add_arguments", "command"]

HELP = ("debug row-level security: whoami (the identity a connection has), as-user ID -- "
        "\"SQL\" (a read-only statement as the app role), explain --user ID --memory UUID "
        "(why a user can or cannot read, update, delete a row); rolled back, always")
ROLE = ("the deployer: a superuser, or a role that is a member of the roles it acts as "
        "(SET ROLE)")
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_LIMIT = 50


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _common(parser: argparse.ArgumentParser, user_option: bool,
            role_default: str = "the app role") -> None:
    add_stack_arguments(parser, ROLE)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT_S,
                        help=f"statement_timeout and lock_timeout, in seconds (default "
                             f"{DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--role", default=None,
                        help=f"act as this role of the stack (SET LOCAL ROLE); default: "
                             f"{role_default}")
    if user_option:
        parser.add_argument("--user", default=None, help="set mem0.user_id LOCAL")
    parser.add_argument("--run", default=None, help="set mem0.run_id LOCAL (sessionScope)")
    parser.add_argument("--agent", default=None, help="set mem0.agent_id LOCAL")
    parser.add_argument("--claims", default=None, metavar="JSON",
                        help="set request.jwt.claims LOCAL (a JSON object, as PostgREST "
                             "sets it)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    whoami = sub.add_parser("whoami", help="the identity as a connection sees it: roles, "
                                           "identity settings and functions")
    _common(whoami, user_option=True, role_default="the connecting role as it is")
    whoami.add_argument("--org", default=None,
                        help="also say whether this organisation is among mem0_org_ids() "
                             "(org tenancy)")
    as_user = sub.add_parser("as-user", help='run one read-only statement as the app role '
                                             'under a user\'s identity: as-user ID -- "SQL"')
    _common(as_user, user_option=False)
    as_user.add_argument("--limit", type=positive_int, default=DEFAULT_LIMIT,
                         help=f"rows printed at most (default {DEFAULT_LIMIT})")
    as_user.add_argument("user", help="the user id (mem0.user_id)")
    # '+': argparse then leaves the statement for after `--` instead of taking none of it
    # with the user id.
    as_user.add_argument("statement", nargs="+", metavar="SQL",
                         help='the statement, after `--`: -- "SELECT ..."')
    explain = sub.add_parser("explain", help="why a user can or cannot read, update, delete "
                                             "(or insert a copy of) one row")
    _common(explain, user_option=True)
    explain.add_argument("--memory", required=True, help="the row's id (a uuid)")
    explain.add_argument("--table", default=None,
                         help="the stack's table holding the row (default: the collection)")



def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n" if args.json else text)


def _model_tables(settings: Settings) -> list[str]:
    return [s.name for s in build_model(settings)
            if s.kind == Kind.TABLE and s.schema == "public"]


def command(args: argparse.Namespace) -> int:
    identity = Identity.from_arguments(getattr(args, "user", None), args.run, args.agent,
                                       args.claims)
    if args.action == "as-user":
        if not args.statement or not " ".join(args.statement).strip():
            raise RlsDebugError('-- SQL: no statement given; usage: rls as-user ID -- '
                                '"SELECT ..."')
    if args.action == "explain":
        memory = memory_id(args.memory)
        if args.user is None:
            raise RlsDebugError("--user: required by explain (the user whose access is "
                                "explained)")
    settings = command_settings(args)
    role = validate_role(args.role, settings)
    dsn = command_dsn(args.dsn, settings, "rls command", "debug")
    if args.action == "whoami":
        with debug_session(dsn, args.timeout) as session:
            who = run_whoami(session, args.role and role, identity, args.org)
        _print(args, who.as_json(), who.text())
        return ExitCode.OK
    if args.action == "as-user":
        identity = Identity.from_arguments(args.user, args.run, args.agent, args.claims)
        with debug_session(dsn, args.timeout) as session:
            result = run_as_user(session, role, identity, " ".join(args.statement),
                                 args.limit, tuple(dict.fromkeys(
                                     ("public", settings.extension_schema))))
        _print(args, result.as_json(), result.text())
        return ExitCode.OK
    table = args.table or settings.collection
    tables = _model_tables(settings)
    with debug_session(dsn, args.timeout, read_only=False) as session:
        allowed = stack_tables(session, tables)
        if table not in allowed:
            raise RlsDebugError(f"--table {table!r}: not a table of stack {settings.stack!r} "
                                f"with an id column here; allowed: {', '.join(allowed)}")
        explanation = run_explain(session, role, identity, memory, table)
    _print(args, explanation.as_json(), explanation.text())
    select = explanation.select_allowed
    return ExitCode.UNUSABLE if select is None else ExitCode.OK if select else ExitCode.FAILED
