"""Measure a stack's first apply on an empty database (prints figures; no asserts).

    .venv/bin/python scripts/measure_first_apply.py [RUNS]

Uses the test bed's server (MEM0_TEST_DSN or a temporary local cluster). Reports, each on
a fresh database: the provider's create calls alone, in model order in this process, and
a whole `pulumi up --skip-preview` through the real CLI (program, plugin, engine, creates
and the post-deploy checks), so the difference is what the engine adds.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.model import build_model
from components.provider import SqlObjectProvider, object_inputs
from components.settings import parse_settings
from tests.support.engine import PulumiStack
from tests.support.testbed import create_database, drop_database, start_server

PASSWORD = "measure-first-apply"


def stack_config(dsn: str, name: str) -> dict[str, object]:
    """Target postgres with roles named after the database (roles are cluster-wide)."""
    return {"target": "postgres", "databaseUrl": dsn, "appRole": f"app_{name}",
            "appRolePassword": PASSWORD, "ownerRole": f"owner_{name}",
            "readonlyRole": f"readonly_{name}", "readonlyRolePassword": PASSWORD,
            "serviceRole": f"service_{name}", "serviceRolePassword": PASSWORD}


def main(runs: int) -> None:
    server, stop = start_server()
    provider_ms: list[float] = []
    engine_ms: list[float] = []
    objects = 0
    try:
        for _ in range(runs):
            name = create_database(server, "bench")
            dsn = server.dsn_for(name)
            specs = build_model(parse_settings(stack_config(dsn, name), "dev"))
            objects = len(specs)
            started = time.perf_counter()
            for spec in specs:
                password = PASSWORD if spec.kind == "role" else None
                SqlObjectProvider().create(object_inputs(spec, dsn, name, False, password))
            provider_ms.append((time.perf_counter() - started) * 1000)
            drop_database(server, name)

            name = create_database(server, "bench")
            with tempfile.TemporaryDirectory() as tmp:
                stack = PulumiStack("dev", Path(tmp) / "state.json",
                                    stack_config(server.dsn_for(name), name))
                stack.write_config()
                started = time.perf_counter()
                stack.cli("up", "--yes", "--skip-preview", "--stack", "dev",
                          "--non-interactive")
                engine_ms.append((time.perf_counter() - started) * 1000)
            drop_database(server, name)
    finally:
        stop()
    for label, values in ((f"provider creates ({objects} objects)", provider_ms),
                          ("pulumi up (program, engine, creates, checks)", engine_ms)):
        print(f"{label}: median {statistics.median(values):.0f} ms, "
              f"min {min(values):.0f} ms, max {max(values):.0f} ms over {len(values)} runs")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
