"""The dev stack on its real embedded database (pgserver's PostgreSQL with pgvector)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from components.connection import stop_embedded
from tests.deploy_driver import DeployDriver

pytestmark = pytest.mark.slow


def test_dev_stack_deploys_into_the_embedded_server_and_destroys(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    try:
        run_dev_stack_cycle(tmp_path, data_dir)
    finally:
        stop_embedded(data_dir)  # never leave a server behind, whatever failed


def run_dev_stack_cycle(tmp_path: Path, data_dir: Path) -> None:
    driver = DeployDriver("dev", tmp_path / "state.json", {"embeddedDataDir": str(data_dir)})
    first = driver.up().raise_for_error()
    assert {o["op"] for o in first.operations} == {"create"}
    uri = first.outputs["mem0Config"]["vector_store"]["config"]["connection_string"]
    assert "mem0Config.vector_store.config.connection_string" in first.secret_outputs
    with psycopg.connect(uri) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("mem0_app",)
        vector_type = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
            "'public.memories'::regclass AND attname = 'vector'").fetchone()
        assert vector_type == ("vector(1536)",)
        conn.execute("INSERT INTO public.memories VALUES (gen_random_uuid(), NULL, '{}')")
        conn.execute("DELETE FROM public.memories")
    again = driver.up().raise_for_error()
    assert {o["op"] for o in again.operations} == {"same"}
    # the history trigger recorded the insert and the delete: history is data
    refused = driver.destroy()
    assert refused.error and "refusing to drop table public.memory_history" in refused.error
    DeployDriver("dev", tmp_path / "state.json",
                 {"embeddedDataDir": str(data_dir), "allowDataLoss": True}
                 ).destroy().raise_for_error()
    assert driver.state() == {}
    assert (data_dir / "PG_VERSION").exists(), "destroy keeps the data directory"
    assert not (data_dir / "postmaster.pid").exists(), "destroy stops the server"
