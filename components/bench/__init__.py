"""`python -m components bench`: how a stack's schema performs under mem0's own SQL.

The bench builds the stack's tables, functions, triggers and indexes from the same model the
Pulumi program deploys (`build_model(settings, schema=scratch)`) in a throwaway schema
`mem0_bench_<8 hex>`, fills it with mem0-shaped rows generated inside the server, times
mem0's exact statements, and drops the schema again whatever happens (also on Ctrl-C).
Its figures are for issue notes and sizing; no test asserts a timing.

This module is the command itself: it runs the steps in order on one connection, around the
scratch schema's lifecycle, and turns Ctrl-C into exit code 130. The run stays here, not in a
submodule, so that the steps it calls are looked up in this package's namespace (the tests
replace `bench._build_indexes` to interrupt a run). The steps live in
`arguments` (command line), `server` (pgvector and session settings), `scratch` (indexes,
sizes, dropping), `data` (the synthetic rows), `measure` (timed runs, recall, plans) and
`report` (the JSON document and the text report); `--rls` adds `rls` (what row-level
security costs mem0's reads, as a throwaway role that is dropped like the schema).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import psycopg

from components.bench.arguments import add_arguments, bench_options, bench_settings
from components.bench.common import APPLICATION, DSN_ENV, BenchError, Names, Options, _set
from components.bench.data import _load, _stage_inserts
from components.bench.measure import MEASUREMENTS, _measure
from components.bench.report import _parameters, render_text
from components.bench.rls import (
    EXIT_RESULTS_DIFFER,
    check_privileges,
    drop_role,
    measure_rls,
    rls_role,
)
from components.bench.scratch import _build_indexes, _drop_scratch, _sizes, _vacuum_analyze
from components.bench.server import Server, _search_session, _server
from components.connection import command_dsn, connect
from components.identifiers import quote_ident
from components.model import build_model
from components.settings import Settings

__all__ = ["DSN_ENV", "EXIT_INTERRUPTED", "MEASUREMENTS", "BenchError", "add_arguments",
           "command"]

SCRATCH_PREFIX = "mem0_bench_"
EXIT_OK, EXIT_INTERRUPTED = 0, 130  # 130: the shell's code for a run ended by SIGINT
BUILD_KINDS = ("table", "function", "trigger")  # before the load; indexes come after it
INDEX_KIND = "index"


class Progress:
    """One line per step on stderr, only when a person is watching (a TTY)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        if self.enabled:
            elapsed = time.monotonic() - self.started
            print(f"[bench {elapsed:7.1f}s] {message}", file=self.stream, flush=True)


def command(args: argparse.Namespace) -> int:
    """Run the bench for parsed arguments; BenchError means it could not run."""
    dsn = command_dsn(args.dsn, "bench", "benchmark")
    settings = bench_settings(args)
    options = bench_options(args)
    for warning in settings.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        report = run_benchmark(dsn, settings, options, Progress(sys.stderr))
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    document = json.dumps(report, indent=2) + "\n"
    if args.output:
        args.output.write_text(document, encoding="utf-8")
    sys.stdout.write(document if args.json else render_text(report))
    if "rls" in report and not report["rls"]["check"]["passed"]:
        print("bench: row-level security changed what a user's own queries return (see the "
              "check in the report)", file=sys.stderr)
        return EXIT_RESULTS_DIFFER
    return EXIT_OK


# --- the run --------------------------------------------------------------------------------


def run_benchmark(dsn: str, settings: Settings, options: Options,
                  progress: Callable[[str], None]) -> dict[str, Any]:
    names = Names(SCRATCH_PREFIX + secrets.token_hex(4), settings)
    try:
        conn = connect(dsn, autocommit=True, application=APPLICATION)
    except psycopg.OperationalError as exc:
        raise BenchError(f"could not connect to the database of --dsn/{DSN_ENV}: {exc}"
                         ) from exc
    with conn:
        try:
            server = _server(conn, settings)
            try:
                return _run(conn, names, server, options, progress)
            finally:
                progress(f"dropping schema {names.scratch}")
                _drop_scratch(conn, dsn, names.scratch)
                if options.rls:  # after the schema: its policies and grants name the role
                    progress(f"dropping role {rls_role(names)}")
                    drop_role(conn, dsn, rls_role(names))
        except psycopg.Error as exc:
            raise BenchError(f"the bench failed: {exc}") from exc


def _run(conn: psycopg.Connection[Any], names: Names, server: Server, options: Options,
         progress: Callable[[str], None]) -> dict[str, Any]:
    if options.rls:
        check_privileges(conn)  # before the load, which a refusal after it would waste
    conn.execute(f"CREATE SCHEMA {quote_ident(names.scratch)}")
    _set(conn, "statement_timeout", "0")  # a 100K-row load outlasts a server's default
    conn.execute("SELECT pg_catalog.setseed(%s)", (options.seed,))
    specs = build_model(names.settings, schema=names.scratch, owned=False)
    progress(f"creating tables, functions and triggers in {names.scratch}")
    for spec in specs:
        if spec.kind in BUILD_KINDS:
            conn.execute(spec.ddl)
    load = _load(conn, names, options, progress)
    inserts = _stage_inserts(conn, names, options)
    conn.execute(f"DROP TABLE {names.obj('bench_pool')}")
    build = _build_indexes(conn, [s for s in specs if s.kind == INDEX_KIND], progress)
    build["vacuum_analyze_s"] = _vacuum_analyze(conn, names)
    sizes = _sizes(conn, names)
    session = _search_session(conn, names.settings, server)
    metrics, plans = _measure(conn, names, server, options, inserts, progress)
    skipped = sorted({s.kind for s in specs} - {*BUILD_KINDS, INDEX_KIND})
    report = {
        "parameters": _parameters(names, server, options, session, skipped),
        "load": load, "index_build": build, "sizes": sizes, "metrics": metrics,
        "plans": plans,
    }
    if options.rls:
        report["rls"] = measure_rls(conn, names, server, options, progress)
    return report
