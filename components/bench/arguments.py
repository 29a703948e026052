"""The bench's command line: its arguments, and the database, settings and options they give."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from components.bench.common import DEFAULT_SAMPLES, DEFAULT_SEED, BenchError, Options
from components.bench.compare import CHOICES as COMPARE_CHOICES
from components.bench.compare import check_compare
from components.bench.realdata import EMBEDDER_DIMENSIONS, EMBEDDERS
from components.bench.role import MODES as ROLE_MODES
from components.bench.users import DISTRIBUTIONS
from components.settings import (
    ITERATIVE_SCANS,
    MAX_DIMENSIONS,
    MAX_HALFVEC_INDEXED_DIMENSIONS,
    MAX_INDEXED_DIMENSIONS,
    Settings,
)
from components.stackfile import add_stack_arguments, load_stack_settings

__all__ = ["add_arguments", "bench_options", "bench_settings", "check_dimensions",
           "check_profile"]


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not allowed; allowed: an integer from {low} to {high}")
        return value

    return parse


def _one_of(allowed: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not allowed; allowed: {', '.join(allowed)}")
        return text

    return parse


def _choice(allowed: tuple[str, ...]) -> dict[str, Any]:
    """`type` and `metavar` of an argument that takes one of `allowed`: a bad value is
    refused naming the allowed ones (argparse's `choices` would list them unquoted)."""
    return {"type": _one_of(allowed), "metavar": "{" + ",".join(allowed) + "}"}


def _seed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 2.0
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed; allowed: a number from -1 to 1 (PostgreSQL's setseed)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("exit codes: 0 every p95 within the stack's limits (benchInsertMs, "
                     "benchSearchMs, benchGetMs, benchTraverseMs); 1 a p95 over its limit, or "
                     "--rls found results changed by row-level security; 2 could not run "
                     "(also: --as app without a role that may create roles); 130 "
                     "interrupted")
    add_stack_arguments(parser, "a role that may create a schema (and, for --as app and "
                                "--rls, roles)")
    parser.add_argument("--rows", type=_bounded(1, 10_000_000), default=None,
                        help="memories to load (default: the stack's benchRows, 10000 unless "
                             "set)")
    parser.add_argument("--users", type=_bounded(1, 1_000_000), default=None,
                        help="users the memories belong to (default: the stack's benchUsers, "
                             "100 unless set)")
    parser.add_argument("--dims", type=_bounded(1, MAX_DIMENSIONS), default=None,
                        help="embedding dimensions (default: the stack's dimensions)")
    parser.add_argument("--samples", type=_bounded(1, 100_000), default=DEFAULT_SAMPLES,
                        help=f"timed runs per measurement (default {DEFAULT_SAMPLES})")
    parser.add_argument("--ef-search", type=_bounded(1, 1000), default=None,
                        help="hnsw.ef_search for the searches (default: the stack's)")
    parser.add_argument("--iterative-scan", choices=[s for s in ITERATIVE_SCANS if s != "auto"],
                        default=None,
                        help="iterative index scans (default: the stack's resolved value; "
                             "applied only on pgvector >= 0.8.0)")
    parser.add_argument("--seed", type=_seed, default=DEFAULT_SEED,
                        help=f"seed of the generated data, -1..1 (default {DEFAULT_SEED})")
    parser.add_argument("--as", dest="as_role", default="app", **_choice(ROLE_MODES),
                        help="whom the timed statements run as: app (default) a throwaway "
                             "role with the stack's app-role grants, row-level security "
                             "policies and session settings (needs CREATEROLE); owner the "
                             "connecting role, without row-level security")
    parser.add_argument("--users-distribution", default="zipf", **_choice(DISTRIBUTIONS),
                        help="memories per user: zipf (default) the user of rank r gets a "
                             "share proportional to 1/r; uniform rows/users each. Searches "
                             "and lists are reported per size class (~10K, ~1K, ~100 ...)")
    parser.add_argument("--compare", default=None, **_choice(COMPARE_CHOICES),
                        help="mem0-default: also build the table mem0 makes for itself (id, "
                             "vector, payload; its hnsw and GIN indexes) in a second scratch "
                             "schema with the same rows, time the same queries there with "
                             "pgvector's defaults, interleaved, and print mem0 p95 / stack p95")
    parser.add_argument("--embedder", default="synthetic", **_choice(EMBEDDERS),
                        help="synthetic (default): clustered vectors generated in the server; "
                             "minilm: mem0-style memory texts, a persona per user, embedded "
                             "by all-MiniLM-L6-v2 (384 dimensions, offline, ~250 texts/s on 2 "
                             "cores) and loaded by binary COPY; queries are texts the user "
                             "never stored")
    parser.add_argument("--rls", action="store_true",
                        help="also time user-scoped search, get by id and list under "
                             "row-level security variants (none, project, project-app, seed) "
                             "as a throwaway role; needs CREATEROLE; makes the user ids "
                             "uuid-shaped; exit 1 if a variant changes a user's results")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document instead of the text report")
    parser.add_argument("--output", "-o", type=Path, default=None,
                        help="also write the JSON document to this file")
    parser.add_argument("--markdown", type=Path, default=None, metavar="FILE",
                        help="also write a Markdown report (parameters, a table of p50/p95/"
                             "p99, recall@10/@80, full pages and the stack's limits per "
                             "metric, mem0's table side by side with --compare, sizes) to "
                             "this file")
    parser.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                        help="also draw every measurement's latency distribution with its "
                             "limit to this PNG file (needs matplotlib)")


def check_profile(settings: Settings) -> None:
    if settings.client_profile != "python":
        raise BenchError(
            f"stack {settings.stack!r} has clientProfile {settings.client_profile!r}; the bench "
            "measures mem0's Python SQL only (allowed: python)")


def check_dimensions(settings: Settings, source: str = "--dims") -> None:
    method = settings.vector_index.method
    if method in ("hnsw", "ivfflat") and settings.dimensions > MAX_HALFVEC_INDEXED_DIMENSIONS:
        raise BenchError(
            f"{source}: {settings.dimensions} is not allowed with the stack's {method} index; "
            f"allowed: 1 to {MAX_HALFVEC_INDEXED_DIMENSIONS} (pgvector indexes at most "
            f"{MAX_INDEXED_DIMENSIONS} dimensions of type vector and "
            f"{MAX_HALFVEC_INDEXED_DIMENSIONS} of type halfvec), or a stack with "
            "vectorIndexMethod none")


def bench_settings(args: argparse.Namespace) -> Settings:
    settings = load_stack_settings(args.stack, args.project_dir)
    check_profile(settings)
    changes: dict[str, Any] = {}
    if args.dims is not None:
        changes["dimensions"] = args.dims
    embedded = EMBEDDER_DIMENSIONS.get(getattr(args, "embedder", "synthetic"))
    if embedded is not None:
        if args.dims is not None and args.dims != embedded:
            raise BenchError(f"--dims: {args.dims} is not allowed with --embedder "
                             f"{args.embedder}; allowed: {embedded} (its embeddings' size), "
                             "or no --dims")
        changes["dimensions"] = embedded
    if args.ef_search is not None:
        changes["hnsw_ef_search"] = args.ef_search
    if args.iterative_scan is not None:
        changes["iterative_scan"] = args.iterative_scan
    settings = replace(settings, **changes)
    if getattr(args, "rls", False) and settings.tenancy != "user":
        raise BenchError(f"--rls: stack {args.stack!r} has tenancy {settings.tenancy!r}; "
                         "allowed: tenancy user (org policies read organisations, which the "
                         "synthetic memories have not; service tenancy has no end-user "
                         "policy)")
    if (getattr(args, "as_role", "app") == "app" and settings.tenancy == "org"
            and settings.app_role_identity == "required"):
        raise BenchError(f"--as app: stack {args.stack!r} has tenancy 'org' with "
                         "appRoleIdentity 'required', so the app role writes only into "
                         "organisations its user belongs to, which the synthetic memories "
                         "have not; allowed: --as owner, or a stack with tenancy user or "
                         "appRoleIdentity trusted/optional")
    check_dimensions(settings)
    if getattr(args, "compare", None):
        check_compare(settings)
    return settings


def bench_options(args: argparse.Namespace, settings: Settings) -> Options:
    """Options from the command line; --rows and --users default to the stack's benchRows
    and benchUsers."""
    rows = settings.bench.rows if args.rows is None else args.rows
    users = settings.bench.users if args.users is None else args.users
    if users > rows:
        users_from = "" if args.users is not None else " (the stack's benchUsers)"
        rows_from = "" if args.rows is not None else " (the stack's benchRows)"
        raise BenchError(f"--users: {users}{users_from} is not allowed with --rows {rows}"
                         f"{rows_from}; allowed: 1 to {rows} (every user needs a memory)")
    for flag in ("--output", "--markdown", "--plot"):
        path = getattr(args, flag[2:], None)
        # Checked before the run, which a missing directory would otherwise waste.
        if path is not None and not path.resolve().parent.is_dir():
            raise BenchError(f"{flag}: {str(path)!r} is not allowed; allowed: a file in an "
                             "existing directory")
    rls = bool(getattr(args, "rls", False))
    return Options(rows=rows, users=users, samples=args.samples, seed=args.seed,
                   rls=rls, uuid_user_ids=rls, distribution=args.users_distribution,
                   as_role=args.as_role, compare=args.compare, embedder=args.embedder)
