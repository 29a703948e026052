"""The `connections` command: arguments, the watch loop, and exit codes.

Exit codes as for every command (components/errors.py): OK the report found nothing
wrong; FAILED mem0's budget is over or a session is idle in a transaction for longer than
--idle-limit; UNUSABLE could not run (arguments, settings, no database). A pooler whose
console refuses this login is reported and changes no exit code. With --watch the code is
the last report's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from components.connection import (
    command_dsn,
    database_identity,
    open_session,
    stack_url,
)
from components.connections.budget import PoolShape
from components.connections.pooler import APPLICATION
from components.connections.report import (
    connections_json,
    connections_markdown,
    connections_text,
)
from components.connections.snapshot import Options, Snapshot, take_snapshot
from components.errors import ExitCode, Mem0InfraError
from components.mem0 import POOL_MAXCONN, POOL_MINCONN
from components.settings import EncryptedValue, Settings
from components.stackfile import add_stack_arguments, command_settings, read_stack_config

HELP = ("read-only report of the server's connections: by role, application, state and "
        "client; idle-in-transaction and long statements; slots left; the pooler's pools; "
        "and whether mem0's connection budget fits")
ROLE = ("a superuser or a member of pg_read_all_stats (other roles see only their own "
        "sessions' state and query)")
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen: --watch redraws on a terminal


class ConnectionsError(Mem0InfraError):
    """`connections` could not run: a bad argument or no database."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser, ROLE)
    parser.add_argument("--processes", type=int, default=1,
                        help="application processes, each with one mem0 Memory (default 1)")
    parser.add_argument("--maxconn", type=int, default=POOL_MAXCONN,
                        help=f"mem0's pool maxconn (default {POOL_MAXCONN}, mem0's own: the "
                             "stack's mem0Config sets none)")
    parser.add_argument("--minconn", type=int, default=POOL_MINCONN,
                        help=f"mem0's pool minconn (default {POOL_MINCONN})")
    parser.add_argument("--no-telemetry", action="store_true",
                        help="the application runs with MEM0_TELEMETRY=false (no telemetry "
                             "store, so no minconn connections for it)")
    parser.add_argument("--long", type=float, default=30.0, metavar="SECONDS",
                        help="name statements running longer than this (default 30)")
    parser.add_argument("--idle-limit", type=float, default=60.0, metavar="SECONDS",
                        help="fail when a session is idle in transaction longer (default 60)")
    parser.add_argument("--pooler-url", default=None,
                        help="the pooler's postgresql:// URL (default: the stack's "
                             "poolerUrl; needed when the stack file holds it encrypted)")
    parser.add_argument("--watch", type=float, default=None, metavar="SECONDS",
                        help="repeat every SECONDS until Ctrl-C")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (with --watch, one per line)")
    parser.add_argument("--markdown", type=Path, default=None, metavar="FILE",
                        help="also write the report as Markdown to FILE")


def _check_arguments(args: argparse.Namespace) -> None:
    positive = {"--watch": args.watch, "--long": args.long, "--idle-limit": args.idle_limit}
    for name, value in positive.items():
        if value is not None and not value > 0:
            raise ConnectionsError(f"{name} {value:g}: must be a number of seconds above 0")
    for name, value in (("--processes", args.processes), ("--maxconn", args.maxconn)):
        if value < 1:
            raise ConnectionsError(f"{name} {value}: must be a whole number of at least 1")
    if not 0 <= args.minconn <= args.maxconn:
        raise ConnectionsError(f"--minconn {args.minconn}: must be between 0 and --maxconn "
                               f"({args.maxconn})")


def _options(args: argparse.Namespace, settings: Settings, stack_pooler_encrypted: bool
             ) -> Options:
    pooler_url = args.pooler_url or settings.pooler_url
    if pooler_url:  # the stack's pooler, with the stack's sslMode (as the pooler check)
        pooler_url = stack_url(pooler_url, settings,
                               "--pooler-url" if args.pooler_url else "poolerUrl")
    if pooler_url is None and stack_pooler_encrypted:
        print("warning: the stack's poolerUrl is encrypted in its stack file; pass "
              "--pooler-url to see the pooler", file=sys.stderr)
    return Options(args.long, args.idle_limit,
                   PoolShape(args.processes, args.minconn, args.maxconn,
                             telemetry=not args.no_telemetry), pooler_url)


def _emit(args: argparse.Namespace, snapshot: Snapshot, redraw: bool) -> None:
    if args.json:
        sys.stdout.write(connections_json(snapshot))
    else:
        sys.stdout.write((CLEAR if redraw else "") + connections_text(snapshot))
    sys.stdout.flush()
    if args.markdown is not None:
        args.markdown.write_text(connections_markdown(snapshot), encoding="utf-8")


def _code(snapshot: Snapshot) -> ExitCode:
    return ExitCode.FAILED if snapshot.problems else ExitCode.OK


def command(args: argparse.Namespace) -> int:
    _check_arguments(args)
    settings = command_settings(args)
    dsn = command_dsn(args.dsn, settings, "connections report", "report on")
    encrypted = isinstance(read_stack_config(args.stack, args.project_dir).get("poolerUrl"),
                           EncryptedValue)
    options = _options(args, settings, encrypted)
    server = database_identity(dsn)
    redraw = args.watch is not None and sys.stdout.isatty() and not args.json
    with open_session(dsn, APPLICATION, ConnectionsError) as conn:
        snapshot = take_snapshot(conn, settings, server, options)
        _emit(args, snapshot, redraw)
        if args.watch is None:
            return _code(snapshot)
        try:
            while True:
                time.sleep(args.watch)
                if not args.json and not redraw:
                    sys.stdout.write("\n")
                snapshot = take_snapshot(conn, settings, server, options)
                _emit(args, snapshot, redraw)
        except KeyboardInterrupt:
            return _code(snapshot)
