"""Concurrent mem0 traffic against a deployed stack, recorded per operation.

`MemoryLoad` runs N writers (`Memory.add(..., infer=False)`) and M searchers
(`Memory.search`) in threads, each with mem0ai's own `Memory` built from the stack's
exported `mem0Config` vector store (so it connects as the app role, the way mem0 does),
with the offline hash embedder of tests/support/mem0_client.py. A side connection (an
admin DSN) samples, every `sample_every` seconds, whether the table's vector index exists
and is valid, and which sessions wait for a lock and for how long.

    load = MemoryLoad(mem0_config["vector_store"], dims=64, admin_dsn=dsn,
                      table="memories", writers=2, searchers=2)
    with load:                       # starts the threads and the sampler
        ...                          # e.g. pulumi up
        marks.append(time.time())    # window edges, wall clock
    result = load.result             # LoadResult: ops, samples
    result.summary([("before", t0, t1), ("during", t1, t2), ("after", t2, t3)])

`Op` is one operation: `kind` (add | search), `started` (wall clock), `seconds`, `ok`,
`error` (the exception's text), and for a search `index_valid`: whether the last sample
before it saw a valid vector index (None: no sample yet). `IndexSample` is one sample:
`valid` (None: no vector index at all), `lock_waits` ((role, seconds waited, query) of
each session waiting for a lock). `LoadResult.summary` gives, over all ops and per window:
ops, failed ops, p50/p95 ms per kind, the longest write and the longest gap between
successful writes (the write stall), the samples without a valid index, and the longest
lock wait per role. `seed_memories` fills the table with mem0-shaped rows in the server
(fast: no client round trip per row), as the admin connection.

mem0 is imported lazily, through tests.support.mem0_client (which turns its telemetry
off first): the one offline client the tests use.
"""

from __future__ import annotations

import importlib
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from components.choice import Choice
from components.identifiers import qualified

__all__ = ["IndexSample", "LoadResult", "MemoryLoad", "Op", "OpKind", "seed_memories"]

SEED_BATCH = 5_000  # rows per INSERT ... SELECT


class OpKind(Choice):
    ADD = "add"
    SEARCH = "search"


@dataclass(frozen=True)
class Op:
    kind: OpKind
    worker: str
    started: float  # time.time()
    seconds: float
    ok: bool
    error: str = ""
    index_valid: bool | None = None  # searches: the last sample's view of the index


@dataclass(frozen=True)
class IndexSample:
    at: float
    valid: bool | None  # None: no vector index on the table at all
    lock_waits: tuple[tuple[str, float, str], ...] = ()  # (role, seconds waiting, query)


def _percentile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


@dataclass
class LoadResult:
    ops: list[Op] = field(default_factory=list)
    samples: list[IndexSample] = field(default_factory=list)

    def failures(self) -> list[Op]:
        return [o for o in self.ops if not o.ok]

    def window(self, start: float, end: float) -> dict[str, Any]:
        """Figures of the ops that started in [start, end) and the samples taken then."""
        ops = [o for o in self.ops if start <= o.started < end]
        samples = [s for s in self.samples if start <= s.at < end]
        figures: dict[str, Any] = {"seconds": round(end - start, 1), "ops": len(ops),
                                   "failed": sum(not o.ok for o in ops)}
        for kind in OpKind:
            took = [o.seconds for o in ops if o.kind == kind and o.ok]
            figures[kind.value] = {"ops": len(took), "p50_ms": _ms(_percentile(took, 0.5)),
                                   "p95_ms": _ms(_percentile(took, 0.95)),
                                   "max_ms": _ms(max(took) if took else None)}
        ends = sorted(o.started + o.seconds for o in ops if o.kind == OpKind.ADD and o.ok)
        gaps = [b - a for a, b in zip([start, *ends], [*ends, end], strict=True)]
        figures["write_stall_ms"] = _ms(max(gaps) if ends else None)
        figures["samples"] = len(samples)
        figures["samples_without_valid_index"] = sum(s.valid is not True for s in samples)
        waits: dict[str, float] = {}
        for sample in samples:
            for role, seconds, _query in sample.lock_waits:
                waits[role] = max(waits.get(role, 0.0), seconds)
        figures["longest_lock_wait_ms"] = {r: _ms(s) for r, s in sorted(waits.items())}
        return figures

    def summary(self, windows: Sequence[tuple[str, float, float]]) -> dict[str, Any]:
        """Figures over every op, then per named window (name, start, end)."""
        starts = [o.started for o in self.ops] or [0.0]
        ends = [o.started + o.seconds for o in self.ops] or [0.0]
        return {"all": self.window(min(starts), max(ends) + 1e-6),
                **{name: self.window(a, b) for name, a, b in windows},
                "errors": sorted({o.error for o in self.failures()})[:10]}


def _vector_index_sql() -> str:
    return ("SELECT bool_and(i.indisvalid) FROM pg_catalog.pg_index i"
            " JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_catalog.pg_am a ON a.oid = c.relam"
            " WHERE i.indrelid = %s::regclass AND a.amname IN ('hnsw', 'ivfflat')"
            " AND c.relname NOT LIKE %s")


# How long each waiting session has waited for its lock (pg_locks.waitstart, PostgreSQL
# 14+), not since its statement began: CREATE INDEX CONCURRENTLY waits many times.
LOCK_WAITS_SQL = (
    "SELECT a.usename, extract(epoch FROM now() - min(l.waitstart)), left(a.query, 120)"
    " FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"
    " WHERE NOT l.granted AND a.datname = current_database()"
    " GROUP BY a.pid, a.usename, a.query")


def _mem0_client() -> Any:
    """tests.support.mem0_client, imported on first use: it imports mem0 with telemetry off
    (by name, so the type checker does not follow it into the untyped mem0)."""
    return importlib.import_module("tests.support.mem0_client")


class MemoryLoad:
    """Writers and searchers through mem0's `Memory`, plus an index/lock sampler."""

    def __init__(self, vector_store: Mapping[str, Any], dims: int, admin_dsn: str,
                 table: str, schema: str = "public", writers: int = 2, searchers: int = 2,
                 users: int = 20, sample_every: float = 0.1, pause: float = 0.0) -> None:
        self.vector_store, self.dims = dict(vector_store), dims
        self.admin_dsn, self.table, self.schema = admin_dsn, table, schema
        self.writers, self.searchers, self.users = writers, searchers, users
        self.sample_every, self.pause = sample_every, pause
        self.result = LoadResult()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._index_valid: bool | None = None
        self._errors: list[BaseException] = []

    def __enter__(self) -> MemoryLoad:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        mem0_client = _mem0_client()
        memories = [mem0_client.memory({**self.vector_store}, self.dims)
                    for _ in range(self.writers + self.searchers)]
        self._memories = memories
        self._sample()  # the first searches already know the index's state
        workers = [(f"writer-{i}", self._write, memories[i]) for i in range(self.writers)]
        workers += [(f"searcher-{i}", self._search, memories[self.writers + i])
                    for i in range(self.searchers)]
        self._threads = [threading.Thread(target=self._sampler, name="sampler", daemon=True)]
        self._threads += [threading.Thread(target=fn, args=(name, memory), name=name,
                                           daemon=True) for name, fn, memory in workers]
        for thread in self._threads:
            thread.start()

    def stop(self) -> LoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        for memory in getattr(self, "_memories", []):
            _mem0_client().close(memory)
        self._memories = []
        if self._errors:
            raise RuntimeError(f"load worker crashed: {self._errors[0]!r}") from self._errors[0]
        return self.result

    def _record(self, op: Op) -> None:
        with self._lock:
            self.result.ops.append(op)

    def _timed(self, kind: OpKind, worker: str, fn: Any) -> None:
        valid = self._index_valid if kind == OpKind.SEARCH else None
        started, clock = time.time(), time.perf_counter()
        try:
            fn()
        except Exception as exc:
            self._record(Op(kind, worker, started, time.perf_counter() - clock, False,
                            f"{type(exc).__name__}: {exc}".strip()[:500], valid))
        else:
            self._record(Op(kind, worker, started, time.perf_counter() - clock, True, "", valid))

    def _loop(self, worker: str, step: Any) -> None:
        count = 0
        try:
            while not self._stop.is_set():
                step(count)
                count += 1
                if self.pause:
                    time.sleep(self.pause)
        except BaseException as exc:
            self._errors.append(exc)

    def _write(self, worker: str, memory: Any) -> None:
        def step(count: int) -> None:
            text = f"{worker} live note {count} {uuid.uuid4().hex[:8]}"
            user = f"user-{count % self.users}"
            self._timed(OpKind.ADD, worker,
                        lambda: memory.add(text, user_id=user, infer=False))
        self._loop(worker, step)

    def _search(self, worker: str, memory: Any) -> None:
        def step(count: int) -> None:
            user = f"user-{count % self.users}"
            self._timed(OpKind.SEARCH, worker,
                        lambda: memory.search(f"query {count}", filters={"user_id": user},
                                              top_k=10))
        self._loop(worker, step)

    def _sample(self, conn: psycopg.Connection[Any] | None = None) -> None:
        own = conn is None
        conn = conn or psycopg.connect(self.admin_dsn, autocommit=True)
        try:
            row = conn.execute(_vector_index_sql(),
                               (qualified(self.schema, self.table), "%\\_mem0\\_new")
                               ).fetchone()
            valid = row[0] if row else None
            waits = tuple((str(r[0]), float(r[1] or 0), str(r[2]))
                          for r in conn.execute(LOCK_WAITS_SQL).fetchall())
        finally:
            if own:
                conn.close()
        self._index_valid = valid
        with self._lock:
            self.result.samples.append(IndexSample(time.time(), valid, waits))

    def _sampler(self) -> None:
        try:
            with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
                while not self._stop.wait(self.sample_every):
                    self._sample(conn)
        except BaseException as exc:
            self._errors.append(exc)


def seed_memories(admin_dsn: str, table: str, dims: int, rows: int, users: int = 20,
                  schema: str = "public") -> Iterator[int]:
    """Insert `rows` mem0-shaped memories (random unit-ish vectors, user_id among `users`)
    in batches, generated in the server; yields the rows inserted so far."""
    target = qualified(schema, table)
    statement = (
        f"INSERT INTO {target} (id, vector, payload)"
        " SELECT gen_random_uuid(),"
        "  (SELECT array_agg(random() - 0.5) FROM generate_series(1, %(dims)s::int)"
        "   WHERE g > 0)::vector,"
        "  jsonb_build_object('data', 'seeded memory ' || g, 'hash', md5(g::text),"
        "   'user_id', 'user-' || (g %% %(users)s::int), 'created_at', now()::text)"
        " FROM generate_series(%(lo)s::int, %(hi)s::int) AS g")
    done = 0
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        while done < rows:
            batch = min(SEED_BATCH, rows - done)
            conn.execute(statement, {"dims": dims, "users": users, "lo": done + 1,
                                     "hi": done + batch})
            done += batch
            yield done
        conn.execute(f"ANALYZE {target}")
