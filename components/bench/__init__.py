"""`python -m components bench`: how a stack's schema performs under mem0's own SQL.

The bench builds the stack's tables, functions, triggers and indexes from the same model the
Pulumi program deploys (`build_model(settings, schema=scratch)`) in a throwaway schema
`mem0_bench_<8 hex>`, fills it with mem0-shaped rows generated inside the server, times
mem0's exact statements, and drops the schema again whatever happens (also on Ctrl-C).
Its figures are for issue notes and sizing; no test asserts a timing. The p95 of the insert,
the user's search, the get by id and both traversals are compared with the stack's limits
(benchInsertMs, benchSearchMs, benchGetMs, benchTraverseMs): the command exits 1 when one is
exceeded, and `run_stack_benchmark` gives the post-deploy checks the same verdict.

This module is the command itself: it runs the steps in order on one connection, around the
scratch schema's lifecycle, and turns Ctrl-C into exit code 130. The run stays here, not in a
submodule, so that the steps it calls are looked up in this package's namespace (the tests
replace `bench._build_indexes` to interrupt a run). The steps live in
`arguments` (command line), `server` (pgvector and session settings), `scratch` (indexes,
sizes, dropping), `data` (the synthetic rows), `measure` (timed runs, recall, plans),
`thresholds` (the stack's limits against the metrics), `report` (the JSON document and the
text report), `markdown` (--markdown), `plot` (--plot, matplotlib) and `progress` (lines and
bars on a terminal); `--rls` adds `rls` (what row-level security costs mem0's reads, as a
throwaway role that is dropped like the schema). `minilm` (all-MiniLM-L6-v2's real
384-dimension embeddings, in numpy) and `texts` (mem0-style memory texts, a persona per
user) are for real-text data; the run does not use them yet.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from dataclasses import dataclass
from typing import Any

import psycopg

from components.bench.arguments import add_arguments, bench_options, bench_settings, check_profile
from components.bench.common import (
    APPLICATION,
    DEFAULT_SEED,
    DSN_ENV,
    BenchError,
    Names,
    Options,
    _set,
)
from components.bench.data import _load, _stage_inserts
from components.bench.markdown import render_markdown
from components.bench.measure import MEASUREMENTS, Latencies, _measure
from components.bench.plot import check_available, write_plot
from components.bench.progress import Progress
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
from components.bench.thresholds import all_passed, evaluate, failures
from components.connection import command_dsn, open_session
from components.identifiers import quote_ident
from components.model import build_model
from components.settings import Settings

__all__ = ["DSN_ENV", "EXIT_INTERRUPTED", "EXIT_THRESHOLD", "MEASUREMENTS", "STACK_SAMPLES",
           "BenchError", "BenchRun", "add_arguments", "command", "run_benchmark",
           "run_stack_benchmark"]

SCRATCH_PREFIX = "mem0_bench_"
EXIT_OK, EXIT_INTERRUPTED = 0, 130  # 130: the shell's code for a run ended by SIGINT
EXIT_THRESHOLD = 1  # a p95 over the stack's limit: a check failed, as cli.EXIT_FAILED
BUILD_KINDS = ("table", "function", "trigger")  # before the load; indexes come after it
INDEX_KIND = "index"
# Timed runs per measurement in the post-deploy checks: the command's default, because a
# p95 that can fail a deployment should not rest on a handful of runs (at 50 it is the 3rd
# slowest). Measured at benchRows 10000, 1536 dims, 2 vCPUs: 17 s per run, 9 s of it the
# measurements, mostly the unfiltered search's exact ground truth (a sequential scan per
# sample, which grows with benchRows); 50 samples would save about 7 s.
STACK_SAMPLES = 200


@dataclass(frozen=True)
class BenchRun:
    """A finished run: the report (the JSON document) and every timed run's latency, which
    only --plot needs and the document leaves out."""

    report: dict[str, Any]
    latencies: dict[str, Latencies]


def command(args: argparse.Namespace) -> int:
    """Run the bench for parsed arguments; BenchError means it could not run."""
    dsn = command_dsn(args.dsn, "bench", "benchmark")
    settings = bench_settings(args)
    options = bench_options(args, settings)
    if args.plot:
        check_available()
    for warning in settings.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        run = run_benchmark(dsn, settings, options, Progress(sys.stderr))
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    report = run.report
    document = json.dumps(report, indent=2) + "\n"
    if args.output:
        args.output.write_text(document, encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(render_markdown(report), encoding="utf-8")
    sys.stdout.write(document if args.json else render_text(report))
    if args.plot:
        write_plot(report, run.latencies, args.plot)
    return _exit_code(report)


def _exit_code(report: dict[str, Any]) -> int:
    """1 when a p95 is over its limit or RLS changed a user's results (both are said on
    stderr), else 0."""
    code = EXIT_OK
    if not report["passed"]:
        print("bench: p95 over the stack's limit (raise the setting with pulumi config set, "
              "or find what slows the query):", file=sys.stderr)
        for line in failures(report["thresholds"]):
            print(f"  {line}", file=sys.stderr)
        code = EXIT_THRESHOLD
    if "rls" in report and not report["rls"]["check"]["passed"]:
        print("bench: row-level security changed what a user's own queries return (see the "
              "check in the report)", file=sys.stderr)
        code = EXIT_RESULTS_DIFFER
    return code


def run_stack_benchmark(dsn: str, settings: Settings) -> dict[str, Any]:
    """The bench as the post-deploy checks run it: the stack's benchRows memories over
    benchUsers users at the stack's dimensions, STACK_SAMPLES (200, the command's default)
    timed runs per measurement, the default seed, no --rls, nothing written to stdout or
    stderr. Returns the report, whose "thresholds" and "passed" are the verdict against the
    stack's benchInsertMs, benchSearchMs, benchGetMs and benchTraverseMs.

    `dsn` must be a role that may create a schema in a database with pgvector where the
    stack puts it (the deploying role is); everything happens in a scratch schema that is
    dropped afterwards, also on error or Ctrl-C (KeyboardInterrupt is re-raised). Raises
    BenchError when it cannot run: no connection, no or an old pgvector, a TypeScript
    stack, or a database error during the run.
    """
    check_profile(settings)
    options = Options(rows=settings.bench.rows, users=settings.bench.users,
                      samples=STACK_SAMPLES, seed=DEFAULT_SEED)
    return run_benchmark(dsn, settings, options, Progress.silent()).report


# --- the run --------------------------------------------------------------------------------


def run_benchmark(dsn: str, settings: Settings, options: Options,
                  progress: Progress) -> BenchRun:
    names = Names(SCRATCH_PREFIX + secrets.token_hex(4), settings)
    with open_session(dsn, APPLICATION, BenchError) as conn:
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
         progress: Progress) -> BenchRun:
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
    metrics, plans, latencies = _measure(conn, names, server, options, inserts, progress)
    verdicts = evaluate(metrics, names.settings.bench)
    skipped = sorted({s.kind for s in specs} - {*BUILD_KINDS, INDEX_KIND})
    report = {
        "parameters": _parameters(names, server, options, session, skipped),
        "load": load, "index_build": build, "sizes": sizes, "metrics": metrics,
        "thresholds": verdicts, "passed": all_passed(verdicts), "plans": plans,
    }
    if options.rls:
        report["rls"] = measure_rls(conn, names, server, options, progress)
    return BenchRun(report, latencies)
