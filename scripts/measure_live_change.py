"""Measure mem0 traffic while `pulumi up` changes a stack with rows (prints figures; no asserts).

    .venv/bin/python scripts/measure_live_change.py [--rows 50000] [--dims 384]
        [--writers 2] [--searchers 2] [--quiet 10] [--lock-timeout 10s] [--json | --markdown]

Uses the test bed's server (MEM0_TEST_DSN or a temporary local cluster). Deploys a stack
(real CLI, hnsw m=16), seeds --rows memories, runs --writers `Memory.add(infer=False)` and
--searchers `Memory.search` through mem0's own client as the app role
(components/bench/load.py), and after --quiet seconds runs one `pulumi up` that rebuilds
the vector index (m=24), adds the full-text index and switches tenancy to org (policies and
grants): tests/support/live_change.py. Reports per window (before, during the up, after):
ops, failed ops, p50/p95 per operation, the longest write stall (largest gap between
successful writes), samples without a valid vector index, and the longest lock wait per role.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MEM0_TELEMETRY", "False")
os.environ.setdefault("MEM0_DIR", tempfile.mkdtemp(prefix="mem0-dir-"))

from tests.support.live_change import CHANGED, run_live_change
from tests.support.testbed import start_server

WINDOWS = ("before", "during", "after")


def markdown(run: dict[str, Any]) -> str:
    figures = run["figures"]
    lines = [
        f"Live `pulumi up` ({', '.join(f'{k}={v}' for k, v in CHANGED.items())}) on "
        f"{run['rows']} memories, {run['dims']} dims, {run['writers']} writers + "
        f"{run['searchers']} searchers (mem0 Memory as the app role); up took "
        f"{run['up_seconds']} s, error: {run['up_error'] or 'none'}.", "",
        "| window | s | ops | failed | add p50/p95 ms | search p50/p95 ms | longest write "
        "stall ms | samples w/o valid index | longest lock wait ms |",
        "|---|---|---|---|---|---|---|---|---|"]
    for name in ("all", *WINDOWS):
        w = figures[name]
        waits = ", ".join(f"{r}: {ms}" for r, ms in w["longest_lock_wait_ms"].items()) or "-"
        lines.append(
            f"| {name} | {w['seconds']} | {w['ops']} | {w['failed']} | "
            f"{w['add']['p50_ms']}/{w['add']['p95_ms']} | "
            f"{w['search']['p50_ms']}/{w['search']['p95_ms']} | {w['write_stall_ms']} | "
            f"{w['samples_without_valid_index']}/{w['samples']} | {waits} |")
    if figures["errors"]:
        lines += ["", "Errors:", *(f"- {e}" for e in figures["errors"])]
    lines += ["", "Operations of the up: " + ", ".join(
        f"{op} {name}" for op, name in run["up_operations"])]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--searchers", type=int, default=2)
    parser.add_argument("--quiet", type=float, default=10.0,
                        help="seconds of load before and after the up")
    parser.add_argument("--lock-timeout", default=None, help="the stack's lockTimeout")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    server, stop = start_server()

    def say(message: str) -> None:
        if sys.stderr.isatty() or not args.json:
            print(f"... {message}", file=sys.stderr, flush=True)

    try:
        run = run_live_change(server, args.rows, args.dims, args.writers, args.searchers,
                              args.quiet, args.lock_timeout, say)
    finally:
        stop()
    run.pop("result")
    if args.json:
        print(json.dumps(run, indent=2))
    else:
        print(markdown(run))


if __name__ == "__main__":
    main()
