"""The bench's command line: its arguments, and the database, settings and options they give."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from components.bench.common import DSN_ENV, BenchError, Options
from components.settings import ITERATIVE_SCANS, MAX_DIMENSIONS, MAX_INDEXED_DIMENSIONS, Settings
from components.stackfile import load_stack_settings


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
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--project-dir", type=Path, default=None,
                        help="directory holding Pulumi.yaml (default: found from the cwd)")
    parser.add_argument("--dsn", default=None,
                        help=f"postgresql:// URL of a role that may create a schema "
                             f"(default: ${DSN_ENV}); the embedded server is never started")
    parser.add_argument("--rows", type=_bounded(1, 10_000_000), default=10_000,
                        help="memories to load (default 10000)")
    parser.add_argument("--users", type=_bounded(1, 1_000_000), default=100,
                        help="users the memories belong to (default 100)")
    parser.add_argument("--dims", type=_bounded(1, MAX_DIMENSIONS), default=None,
                        help="embedding dimensions (default: the stack's dimensions)")
    parser.add_argument("--samples", type=_bounded(1, 100_000), default=200,
                        help="timed runs per measurement (default 200)")
    parser.add_argument("--ef-search", type=_bounded(1, 1000), default=None,
                        help="hnsw.ef_search for the searches (default: the stack's)")
    parser.add_argument("--iterative-scan", choices=[s for s in ITERATIVE_SCANS if s != "auto"],
                        default=None,
                        help="iterative index scans (default: the stack's resolved value; "
                             "applied only on pgvector >= 0.8.0)")
    parser.add_argument("--seed", type=_seed, default=0.25,
                        help="seed of the generated data, -1..1 (default 0.25)")
    parser.add_argument("--rls", action="store_true",
                        help="also time user-scoped search, get by id and list under "
                             "row-level security variants (none, project, project-app, seed) "
                             "as a throwaway role; needs CREATEROLE; makes the user ids "
                             "uuid-shaped; exit 1 if a variant changes a user's results")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document instead of the text report")
    parser.add_argument("--output", "-o", type=Path, default=None,
                        help="also write the JSON document to this file")


def bench_settings(args: argparse.Namespace) -> Settings:
    settings = load_stack_settings(args.stack, args.project_dir)
    if settings.client_profile != "python":
        raise BenchError(
            f"stack {args.stack!r} has clientProfile {settings.client_profile!r}; the bench "
            "measures mem0's Python SQL only (allowed: python)")
    changes: dict[str, Any] = {}
    if args.dims is not None:
        changes["dimensions"] = args.dims
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
    method = settings.vector_index.method
    if method in ("hnsw", "ivfflat") and settings.dimensions > MAX_INDEXED_DIMENSIONS:
        raise BenchError(
            f"--dims: {settings.dimensions} is not allowed with the stack's {method} index; "
            f"allowed: 1 to {MAX_INDEXED_DIMENSIONS} (pgvector indexes at most "
            f"{MAX_INDEXED_DIMENSIONS} dimensions), or a stack with vectorIndexMethod none")
    return settings


def bench_options(args: argparse.Namespace) -> Options:
    if args.users > args.rows:
        raise BenchError(f"--users: {args.users} is not allowed with --rows {args.rows}; "
                         f"allowed: 1 to {args.rows} (every user needs a memory)")
    rls = bool(getattr(args, "rls", False))
    return Options(rows=args.rows, users=args.users, samples=args.samples, seed=args.seed,
                   rls=rls, uuid_user_ids=rls)
