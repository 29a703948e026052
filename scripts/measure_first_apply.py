"""Measure a stack's first apply on an empty database (prints figures; no asserts).

    .venv/bin/python scripts/measure_first_apply.py [RUNS]

Uses the test bed's server (MEM0_TEST_DSN or a temporary local cluster) and the test
stacks' settings (target postgres, roles named after the database). Reports, each on
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
from tests.conftest import APP_PASSWORD, TestDatabase, stack_config
from tests.support.engine import PulumiStack
from tests.support.testbed import create_database, drop_database, start_server


def main(runs: int) -> None:
    server, stop = start_server()
    provider_ms: list[float] = []
    engine_ms: list[float] = []
    objects = 0
    try:
        for _ in range(runs):
            name = create_database(server, "bench")
            dsn = server.dsn_for(name)
            database = TestDatabase(server, name, dsn)
            specs = build_model(parse_settings(stack_config(database), "dev"))
            objects = len(specs)
            started = time.perf_counter()
            for spec in specs:
                password = APP_PASSWORD if spec.kind == "role" else None
                SqlObjectProvider().create(object_inputs(spec, dsn, name, False, password))
            provider_ms.append((time.perf_counter() - started) * 1000)
            drop_database(server, name)

            name = create_database(server, "bench")
            with tempfile.TemporaryDirectory() as tmp:
                database = TestDatabase(server, name, server.dsn_for(name))
                stack = PulumiStack("dev", Path(tmp) / "state.json", stack_config(database))
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
