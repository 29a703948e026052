"""Measure the first slice's apply time on an empty database (prints figures; no asserts).

    .venv/bin/python scripts/measure_first_apply.py [RUNS]

Uses the test bed's server (MEM0_TEST_DSN or a temporary local cluster). Reports the time
of the provider's create calls alone and of a whole deploy-driver `up` (program run under
the mock runtime in a subprocess plus the creates), each on a fresh database.
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
from tests.deploy_driver import DeployDriver
from tests.support.testbed import create_database, drop_database, start_server


def main(runs: int) -> None:
    server, stop = start_server()
    provider_ms: list[float] = []
    driver_ms: list[float] = []
    try:
        for _ in range(runs):
            name = create_database(server, "bench")
            dsn = server.dsn_for(name)
            settings = parse_settings({"target": "postgres", "databaseUrl": dsn}, "dev")
            started = time.perf_counter()
            for spec in build_model(settings):
                SqlObjectProvider().create(object_inputs(spec, dsn, "bench", False))
            provider_ms.append((time.perf_counter() - started) * 1000)
            drop_database(server, name)

            name = create_database(server, "bench")
            with tempfile.TemporaryDirectory() as tmp:
                driver = DeployDriver("dev", Path(tmp) / "state.json",
                                      {"target": "postgres", "databaseUrl": server.dsn_for(name)})
                started = time.perf_counter()
                driver.up(refresh=False).raise_for_error()
                driver_ms.append((time.perf_counter() - started) * 1000)
            drop_database(server, name)
    finally:
        stop()
    for label, values in (("provider creates (3 objects)", provider_ms),
                          ("deploy-driver up (program + creates)", driver_ms)):
        print(f"{label}: median {statistics.median(values):.0f} ms, "
              f"min {min(values):.0f} ms, max {max(values):.0f} ms over {len(values)} runs")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
