"""`migrate verify RUN`: the run's memories are in the stack as the source had them.

Three checks, each listing its failures:
- counts: per user, the run's migrated memories found in the target (with that user and
  as the run wrote them) equal the source's records (those staged);
- search: every migrated memory's own text finds it as the top hit of a search scoped to
  its user, with mem0's own statement (components.mem0.Statements.search) and the app
  role's search settings; the query vector is the text embedded again with `embedder`, or,
  without one, the stored vector (which then only proves the row is reachable);
- vectors: a random sample of the memories whose source had a vector: the stored vector
  equals the source's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from components.mem0 import Statements
from components.migrate.importer import same_vectors, user_of
from components.migrate.records import Embedder, MigrationError
from components.migrate.store import Names, RunState, as_service, load_run, session
from components.model import app_role_search_settings
from components.settings import Settings

__all__ = ["Check", "VerifyResult", "run_verify"]

CHUNK = 1000
SEARCH_LIMIT = 5  # enough to see a tie at the top
SHOW = 20  # failures listed per check


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    failures: list[str] = field(default_factory=list)


@dataclass
class VerifyResult:
    run_id: str
    checks: list[Check]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {"run": self.run_id, "passed": self.passed, "seconds": round(self.seconds, 3),
                "checks": [vars(c) for c in self.checks]}

    def text(self) -> str:
        lines = [f"verify run {self.run_id}: {'PASS' if self.passed else 'FAIL'} "
                 f"({self.seconds:.1f}s)"]
        for check in self.checks:
            lines.append(f"  {'ok  ' if check.passed else 'FAIL'} {check.name}: {check.detail}")
            lines.extend(f"       {f}" for f in check.failures[:SHOW])
            if len(check.failures) > SHOW:
                lines.append(f"       ... and {len(check.failures) - SHOW} more")
        return "\n".join(lines) + "\n"


def _search_settings(cur: psycopg.Cursor[Any], settings: Settings) -> None:
    """The app role's search settings for this transaction: a search as mem0's would run."""
    values, _requires = app_role_search_settings(settings)
    for name, value in values.items():
        if name != "search_path":
            cur.execute("SELECT pg_catalog.set_config(%s, %s, true)", (name, value))


def _key(payload: dict[str, Any]) -> tuple[str, str] | None:
    for key in ("user_id", "agent_id", "run_id"):
        if payload.get(key):
            return key, str(payload[key])
    return None


def run_verify(dsn: str, settings: Settings, run_id: str, embedder: Embedder | None,
               sample: int) -> VerifyResult:
    names = Names.of(settings)
    search = Statements.qualified_names(names.memories, settings.extension_schema).search()
    started = time.monotonic()
    source: dict[str, int] = {}
    target: dict[str, int] = {}
    not_as_written: list[str] = []
    misses: list[str] = []
    searched = 0
    with session(dsn, settings) as conn:
        with as_service(conn, settings) as cur:
            run = load_run(cur, names, run_id)
        if run.state != RunState.DONE:
            raise MigrationError(f"run {run_id} is {run.state.value}: verify checks a run "
                                 "that is done (`migrate resume` finishes it)")
        top = run.staged_seq
        for first in range(1, top + 1, CHUNK):
            with as_service(conn, settings) as cur:
                _search_settings(cur, settings)
                rows = cur.execute(
                    "SELECT s.id, s.origin, s.payload, s.vector, m.id IS NOT NULL, m.payload,"
                    f" m.vector FROM {names.staged} s LEFT JOIN {names.memories} m"
                    " ON m.id = s.id WHERE s.run_id = %s AND s.seq BETWEEN %s AND %s"
                    " ORDER BY s.seq", (run_id, first, first + CHUNK - 1)).fetchall()
                queries: Sequence[Any]
                if embedder is not None:
                    queries = embedder.embed([str(r[2].get("data", "")) for r in rows])
                else:
                    queries = [r[6] for r in rows]
                for row, query in zip(rows, queries, strict=True):
                    memory, origin, staged, vector, present, payload, stored = row
                    user = user_of(staged)
                    source[user] = source.get(user, 0) + 1
                    if present and payload == staged and same_vectors(stored, vector):
                        target[user] = target.get(user, 0) + 1
                    elif present:
                        not_as_written.append(f"{memory} ({origin}): changed since the run")
                    else:
                        not_as_written.append(f"{memory} ({origin}): missing")
                    key = _key(staged)
                    if not present or key is None or query is None:
                        continue
                    searched += 1
                    vector_list = [float(v) for v in (
                        query.to_list() if hasattr(query, "to_list") else query)]
                    hits = cur.execute(search, (vector_list, key[0], key[1],
                                                SEARCH_LIMIT)).fetchall()
                    best = hits[0][1] if hits else None
                    tied = {h[0] for h in hits if h[1] == best}
                    if memory not in tied:
                        found = f"top hit {hits[0][0]}" if hits else "no hit"
                        misses.append(f"{memory} ({origin}): {found} in {key[0]}={key[1]}")
        with as_service(conn, settings) as cur:
            rows = cur.execute(
                f"SELECT s.id, s.origin, s.vector, m.vector FROM {names.staged} s"
                f" LEFT JOIN {names.memories} m ON m.id = s.id WHERE s.run_id = %s"
                " AND s.source_had_vector ORDER BY pg_catalog.random() LIMIT %s",
                (run_id, sample)).fetchall()
    vector_failures = [f"{r[0]} ({r[1]}): the stored vector differs from the source's"
                       for r in rows if not same_vectors(r[2], r[3])]
    count_failures = [f"{user}: source {n}, target {target.get(user, 0)}"
                      for user, n in sorted(source.items()) if target.get(user, 0) != n]
    how = "the text embedded again" if embedder is not None else \
        "the stored vector (no --embedder: this proves each row is reachable, not that " \
        "its vector fits its text)"
    checks = [
        Check("counts", not count_failures and not not_as_written,
              f"{sum(source.values())} records of {len(source)} users/agents; "
              f"{sum(target.values())} found as written",
              count_failures + not_as_written),
        Check("search", not misses,
              f"{searched - len(misses)}/{searched} memories are their own text's top hit "
              f"(query: {how})", misses),
        Check("vectors", not vector_failures,
              f"{len(rows) - len(vector_failures)}/{len(rows)} sampled vectors equal the "
              "source's", vector_failures),
    ]
    return VerifyResult(run_id, checks, time.monotonic() - started)
