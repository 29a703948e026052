"""The bench's run: the command, and the steps in order around the scratch schemas and role.

`command` is `python -m components bench`: it parses the stack and options, runs, writes
the report (text or JSON, --output, --markdown, --plot) and turns the verdict into the exit
code (components.errors.ExitCode): OK, FAILED when a p95 is over its limit or --rls found
changed results, INTERRUPTED on Ctrl-C; BenchError (UNUSABLE) when it could not run.
`run_benchmark` builds the stack's objects in a scratch schema `mem0_bench_<8 hex>`, loads
the rows, builds the indexes, draws the queries, measures as the chosen role and reports;
the scratch schemas and the throwaway role are dropped whatever happens (also on Ctrl-C).
`run_stack_benchmark` is the same run as the post-deploy checks use it.

The steps are looked up in this module's namespace, so a test can replace one (for example
`run.build_indexes`, to interrupt a run after the load).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from components.bench.arguments import bench_options, bench_settings, check_profile
from components.bench.common import (
    APPLICATION,
    DEFAULT_SEED,
    BenchError,
    Names,
    Options,
    set_setting,
)
from components.bench.compare import build_mem0_table, compare_names
from components.bench.data import Mem0Row, load_memories, stage_inserts
from components.bench.markdown import render_markdown
from components.bench.measure import (
    HOPS,
    MEM0,
    STACK,
    Latencies,
    Measured,
    Side,
    run_measurements,
)
from components.bench.plot import check_available, write_plot
from components.bench.progress import Progress
from components.bench.report import render_text, run_parameters
from components.bench.rls import EXIT_RESULTS_DIFFER, measure_rls
from components.bench.role import (
    AppAccess,
    check_can_create_roles,
    create_role,
    drop_role,
    grant_app_access,
    lift_app_access,
    open_measured,
    role_name,
    settings_in_effect,
)
from components.bench.samples import Draw, draw
from components.bench.scratch import build_indexes, drop_scratch, scratch_sizes, vacuum_scratch
from components.bench.server import Server, inspect_server, set_search_settings
from components.bench.thresholds import all_passed, evaluate, failures
from components.bench.users import classes, describe, user_counts
from components.connection import command_dsn, open_session
from components.errors import ExitCode
from components.identifiers import quote_ident
from components.kinds import Kind
from components.model import build_model
from components.settings import Settings

__all__ = ["AFTER_LOAD_KINDS", "BUILD_KINDS", "EXIT_INTERRUPTED", "EXIT_THRESHOLD",
           "SCRATCH_PREFIX", "STACK_DISTRIBUTION", "STACK_SAMPLES", "BenchRun", "command",
           "exit_code", "run_benchmark", "run_stack_benchmark"]

SCRATCH_PREFIX = "mem0_bench_"
EXIT_INTERRUPTED = ExitCode.INTERRUPTED  # 130: the shell's code for a run ended by SIGINT
EXIT_THRESHOLD = ExitCode.FAILED  # a p95 over the stack's limit: a check failed
BUILD_KINDS = (Kind.TABLE, Kind.FUNCTION, Kind.TRIGGER)  # before the load; indexes come after it
AFTER_LOAD_KINDS = (Kind.INDEX, Kind.STATISTICS)  # built over the loaded rows; ANALYZE fills both
# Timed runs per measurement in the post-deploy checks: the command's default, because a
# p95 that can fail a deployment should not rest on a handful of runs (at 50 it is the 3rd
# slowest). Measured at benchRows 10000, 1536 dims, 2 vCPUs, before the bench ran as the
# app role and timed lists: 17 s per run, 9 s of it the measurements, mostly the unfiltered
# search's exact ground truth (a sequential scan per sample, which grows with benchRows).
STACK_SAMPLES = 200
# The post-deploy check's users: uniform, see run_stack_benchmark.
STACK_DISTRIBUTION = "uniform"


@dataclass(frozen=True)
class BenchRun:
    """A finished run: the report (the JSON document) and every timed run's latency, the
    stack's and, with --compare, mem0's table's, which only --plot needs and the document
    leaves out."""

    report: dict[str, Any]
    latencies: dict[str, Latencies]
    compare_latencies: dict[str, Latencies] = field(default_factory=dict)


def command(args: argparse.Namespace) -> int:
    """Run the bench for parsed arguments; BenchError means it could not run."""
    settings = bench_settings(args)
    dsn = command_dsn(args.dsn, settings, "bench", "benchmark")
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
        write_plot(report, run.latencies, args.plot, run.compare_latencies)
    return exit_code(report)


def exit_code(report: dict[str, Any]) -> ExitCode:
    """FAILED (1) when a p95 is over its limit or RLS changed a user's results (both are
    said on stderr), else OK."""
    code = ExitCode.OK
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
    benchUsers users, spread uniformly (the figure the stack's limits were set against,
    and one size class, so the check's runtime stays what it was), at the stack's
    dimensions, STACK_SAMPLES (200, the command's default) timed runs per measurement, the
    default seed, as a throwaway app role under the app role's row-level security and
    session settings (the command's default --as app), no --rls, no --compare, nothing
    written to stdout or stderr. Returns the report, whose "thresholds" and "passed" are the
    verdict against the stack's benchInsertMs, benchSearchMs, benchGetMs and
    benchTraverseMs.

    `dsn` must be a role that may create a schema in a database with pgvector where the
    stack puts it, and may create roles (the deploying role may); everything happens in a
    scratch schema and a throwaway role that are dropped afterwards, also on error or
    Ctrl-C (KeyboardInterrupt is re-raised). Raises BenchError when it cannot run: no
    connection, no or an old pgvector, a TypeScript stack, a role that may not create
    roles, or a database error during the run.
    """
    check_profile(settings)
    options = Options(rows=settings.bench.rows, users=settings.bench.users,
                      samples=STACK_SAMPLES, seed=DEFAULT_SEED,
                      distribution=STACK_DISTRIBUTION, as_role="app")
    return run_benchmark(dsn, settings, options, Progress.silent()).report


# --- the run --------------------------------------------------------------------------------


def run_benchmark(dsn: str, settings: Settings, options: Options,
                  progress: Progress) -> BenchRun:
    names = Names(SCRATCH_PREFIX + secrets.token_hex(4), settings)
    with open_session(dsn, APPLICATION, BenchError) as conn:
        try:
            server = inspect_server(conn, settings)
            try:
                return _run(conn, dsn, names, server, options, progress)
            finally:
                for schema in _schemas(names, options):
                    progress(f"dropping schema {schema}")
                    drop_scratch(conn, dsn, schema)
                if _needs_role(options):  # after the schemas: their policies name the role
                    progress(f"dropping role {role_name(names)}")
                    drop_role(conn, dsn, role_name(names))
        except psycopg.Error as exc:
            raise BenchError(f"the bench failed: {exc}") from exc


def _schemas(names: Names, options: Options) -> list[str]:
    return [names.scratch, *([compare_names(names).scratch] if options.compare else [])]


def _needs_role(options: Options) -> bool:
    return options.as_role == "app" or options.rls


def _check_privileges(conn: psycopg.Connection[Any], options: Options) -> None:
    """Before the load, which a refusal after it would waste."""
    if options.as_role == "app":
        check_can_create_roles(conn, "measuring as the app role (--as app, the default; the "
                               "post-deploy benchmark too)",
                               "--as owner (measures as the connecting role, without "
                               "row-level security)")
    elif options.rls:
        check_can_create_roles(conn, "--rls", "no --rls")


def _run(conn: psycopg.Connection[Any], dsn: str, names: Names, server: Server,
         options: Options, progress: Progress) -> BenchRun:
    _check_privileges(conn, options)
    conn.execute(f"CREATE SCHEMA {quote_ident(names.scratch)}")
    set_setting(conn, "statement_timeout", "0")  # a 100K-row load outlasts a server's default
    conn.execute("SELECT pg_catalog.setseed(%s)", (options.seed,))
    specs = build_model(names.settings, schema=names.scratch, owned=False)
    progress(f"creating tables, functions and triggers in {names.scratch}")
    for spec in specs:
        if spec.kind in BUILD_KINDS:
            conn.execute(spec.ddl)
    counts = user_counts(options.rows, options.users, options.distribution)
    load = load_memories(conn, names, options, counts, progress)
    inserts = stage_inserts(conn, names, options)
    conn.execute(f"DROP TABLE {names.obj('bench_pool')}")
    build = build_indexes(conn, [(s.name, s.ddl) for s in specs
                                  if s.kind in AFTER_LOAD_KINDS],
                           progress)
    build["vacuum_analyze_s"] = vacuum_scratch(conn, names)
    sizes = scratch_sizes(conn, names)
    compared = build_mem0_table(conn, names, progress) if options.compare else None
    members = classes(counts)
    # Drawn as the connecting role, before FORCE ROW LEVEL SECURITY binds it too.
    drawn = draw(conn, names, counts, members, options.samples, options.uuid_user_ids, HOPS,
                 held_out=options.embedder == "minilm")
    access = _prepare_role(conn, names, options, progress)
    measured, sessions = _measure_sides(dsn, names, server, options, access is not None,
                                        drawn, inserts, progress)
    metrics = measured.metrics[STACK]
    verdicts = evaluate(metrics, names.settings.bench)
    built = {*BUILD_KINDS, *AFTER_LOAD_KINDS}
    skipped = sorted(str(kind) for kind in {s.kind for s in specs} - built)
    report: dict[str, Any] = {
        "parameters": run_parameters(names, server, options, sessions[STACK], skipped,
                                  _measured_as(names, options, access, sessions[STACK])),
        "users": describe(counts, options.distribution),
        "load": load, "index_build": build, "sizes": sizes, "metrics": metrics,
        "thresholds": verdicts, "passed": all_passed(verdicts), "plans": measured.plans[STACK],
    }
    if compared is not None:
        report["compare"] = _compared(compared, measured, sessions[MEM0])
    if options.rls:
        if access is not None:
            lift_app_access(conn, names, access)
        set_search_settings(conn, names.settings, server)
        report["rls"] = measure_rls(conn, names, server, options, progress)
    return BenchRun(report, measured.latencies[STACK], measured.latencies.get(MEM0, {}))


def _prepare_role(conn: psycopg.Connection[Any], names: Names, options: Options,
                  progress: Progress) -> AppAccess | None:
    """The throwaway role, when the run needs it; with --as app, the app role's access."""
    if not _needs_role(options):
        return None
    role = role_name(names)
    progress(f"creating role {role}")
    create_role(conn, names, role)
    if options.as_role != "app":
        return None
    progress(f"giving {role} the app role's privileges, policies and settings")
    return grant_app_access(conn, names, role)


def _measure_sides(dsn: str, names: Names, server: Server, options: Options, as_app: bool,
                   drawn: Draw, inserts: Sequence[Mem0Row], progress: Progress
                   ) -> tuple[Measured, dict[str, dict[str, Any]]]:
    """Open the measured sessions (the stack's, and mem0's with --compare), measure, and
    close them whatever happens; returns what each session ran as."""
    opened: list[Side] = []
    try:
        identity = as_app and names.settings.app_role_identity == "required"
        stack = open_measured(dsn, names, server, role_name(names) if as_app else None,
                              stack_settings=True, identity=identity)
        opened.append(Side(STACK, stack, names))
        if options.compare:
            mem0 = open_measured(dsn, compare_names(names), server, None,
                                 stack_settings=False)
            opened.append(Side(MEM0, mem0, compare_names(names)))
        sessions = {side.name: {"current_user": side.session.current_user,
                                "settings": settings_in_effect(side.session),
                                "identity": side.session.identity} for side in opened}
        return run_measurements(opened, server, drawn, inserts, progress), sessions
    finally:
        for side in opened:
            side.session.close()


def _measured_as(names: Names, options: Options, access: AppAccess | None,
                 session: dict[str, Any]) -> dict[str, Any]:
    s = names.settings
    if access is None:
        return {"mode": "owner", "role": session["current_user"],
                "row_level_security": "none: the connecting role owns the scratch tables, "
                                      "which have no row-level security",
                "identity": "not set"}
    if session["identity"]:
        identity = ("mem0.user_id set to each statement's user before it runs, untimed "
                    "(appRoleIdentity required: the app role sees only that user's rows)")
    elif s.app_role_identity == "trusted":
        identity = ("not needed (appRoleIdentity trusted: the app role sees every row; "
                    "mem0's own filter separates users)")
    else:
        identity = ("not set (appRoleIdentity optional: the app role sees every row until a "
                    "connection names a user, and mem0 names none; its own filter separates "
                    "users)")
    return {"mode": "app", "role": role_name(names), "current_user": session["current_user"],
            "stands_for": s.app_role,
            "how": "a throwaway NOLOGIN role with the app role's grants and policies from "
                   "the model (components.access.table_access, components.model.policy_ddl); "
                   "a session of its own, SET ROLE for its whole life, then the app role's "
                   "search settings with set_config (role settings apply only at login)",
            **access.report(), "identity": identity}


def _compared(compared: dict[str, Any], measured: Measured,
              session: dict[str, Any]) -> dict[str, Any]:
    stack, mem0 = measured.metrics[STACK], measured.metrics[MEM0]
    return {**compared, "measured_as": session["current_user"],
            "session_settings": session["settings"],
            "order": "interleaved per query: the stack's copy, then mem0's table",
            "metrics": mem0,
            "p95_ratio": {name: round(m["p95_ms"] / stack[name]["p95_ms"], 3)
                          if stack[name]["p95_ms"] else None for name, m in mem0.items()},
            "ratio": "mem0 p95 / stack p95: above 1, the stack is faster",
            "plans": measured.plans[MEM0]}
