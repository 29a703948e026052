"""What the measurements ask: query vectors per size class, ids, drawn before any timed run.

Drawn as the connecting role before row-level security is switched on (FORCE binds the
owner too), from the seeded session, so a seed draws the same queries again. A user query
is one of the user's memories plus noise (cosine ~0.93 to it); users are taken from their
class evenly by rank, and the classes take turns (largest first), so that a prepared
statement's plan choice is made over the mix a mem0 connection serves, not over one class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from pgvector import Vector

from components.bench.common import WARMUP, BenchError, Names
from components.bench.data import QUERY_NOISE_SHARE
from components.bench.realdata import QUERY_TABLE
from components.bench.users import SizeClass, pick, user_id

__all__ = ["Draw", "Rows", "UserQuery", "draw", "random_ids", "unfiltered_queries",
           "user_queries"]

Rows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class UserQuery:
    size: SizeClass
    user: str
    memories: int  # the user's memory count
    vector: list[float]


@dataclass(frozen=True)
class Draw:
    """Everything the timed runs will ask, the first WARMUP of each list untimed."""

    user_queries: list[UserQuery]  # classes in turn
    unfiltered: list[tuple[str, list[float]]]  # (the memory's user, query vector)
    gets: list[tuple[str, str]]  # (id, its user)
    traversals: dict[int, list[tuple[str, str]]]  # hops -> (id, its user)


def _sample(conn: psycopg.Connection[Any], statement: str, params: Sequence[Any],
            count: int) -> Rows:
    """`count` rows of a statement that ends in LIMIT %s; again when the table has fewer."""
    rows: Rows = []
    while len(rows) < count:
        rows += conn.execute(statement, (*params, count - len(rows))).fetchall()
    return rows


def _noise(n: Names) -> str:
    return f"{n.obj('bench_direction')}(%s::integer, %s::double precision)"


def _noise_params(n: Names) -> tuple[int, float]:
    return n.settings.dimensions, math.sqrt(QUERY_NOISE_SHARE)


def _turns(classes: Sequence[SizeClass], samples: int) -> list[SizeClass]:
    """The class of each query: WARMUP untimed ones, then `samples` for every class, the
    classes taking turns."""
    warmup = [classes[i % len(classes)] for i in range(WARMUP)]
    return warmup + [classes[i % len(classes)] for i in range(samples * len(classes))]


def user_queries(conn: psycopg.Connection[Any], n: Names, counts: Sequence[int],
                 members: dict[SizeClass, list[int]], samples: int,
                 uuid_ids: bool, held_out: bool = False) -> list[UserQuery]:
    turns = _turns(list(members), samples)
    chosen = {size: iter(pick(users, turns.count(size))) for size, users in members.items()}
    numbers = [next(chosen[size]) for size in turns]
    ids = [user_id(number, uuid_ids) for number in numbers]
    if held_out:  # real text: one of the user's held-out texts, as it was embedded
        source = (f"SELECT vector FROM {n.obj(QUERY_TABLE)} WHERE user_id = s.u"
                  " ORDER BY pg_catalog.random() LIMIT 1")
        query, params = "m.vector::text", cast(tuple[Any, ...], ())
    else:
        source = (f"SELECT vector FROM {n.memories} WHERE payload ->> 'user_id' = s.u"
                  " ORDER BY pg_catalog.random() LIMIT 1")
        # The column may be halfvec (above 2000 dimensions): the helpers take vector.
        query = f"{n.obj('bench_unit')}(m.vector::{n.vector} {n.op('+')} {_noise(n)})::text"
        params = _noise_params(n)
    rows = conn.execute(
        f"SELECT s.u, {query}"
        " FROM pg_catalog.unnest(%s::text[]) WITH ORDINALITY AS s(u, i)"
        f" CROSS JOIN LATERAL ({source}) AS m ORDER BY s.i", (*params, ids)).fetchall()
    if len(rows) != len(ids):  # the generator gives every user a memory
        raise BenchError(f"{len(ids) - len(rows)} of the drawn users have no memory")
    return [UserQuery(size, user, counts[number], Vector.from_text(vector).to_list())
            for size, number, (user, vector) in zip(turns, numbers, rows, strict=True)]


def unfiltered_queries(conn: psycopg.Connection[Any], n: Names, count: int,
                       held_out: bool = False) -> list[tuple[str, list[float]]]:
    if held_out:
        rows = _sample(conn, f"SELECT user_id, vector::text FROM {n.obj(QUERY_TABLE)}"
                             " ORDER BY pg_catalog.random() LIMIT %s::bigint", (), count)
        return [(user, Vector.from_text(vector).to_list()) for user, vector in rows]
    rows = _sample(
        conn,
        f"SELECT m.payload ->> 'user_id', {n.obj('bench_unit')}(m.vector::{n.vector} {n.op('+')}"
        f" {_noise(n)})::text FROM (SELECT payload, vector FROM {n.memories}"
        " ORDER BY pg_catalog.random() LIMIT %s::bigint) AS m", _noise_params(n), count)
    return [(user, Vector.from_text(vector).to_list()) for user, vector in rows]


def random_ids(conn: psycopg.Connection[Any], n: Names, count: int) -> list[tuple[str, str]]:
    rows = _sample(conn, f"SELECT id::text, payload ->> 'user_id' FROM {n.memories}"
                         " ORDER BY pg_catalog.random() LIMIT %s::bigint", (), count)
    return [(row[0], row[1]) for row in rows]


def draw(conn: psycopg.Connection[Any], n: Names, counts: Sequence[int],
         members: dict[SizeClass, list[int]], samples: int, uuid_ids: bool,
         hops: Sequence[int], held_out: bool = False) -> Draw:
    """The queries: a stored memory plus noise, or with `held_out` (real text) the
    embedding of a text the user never stored."""
    per_run = samples + WARMUP
    return Draw(user_queries(conn, n, counts, members, samples, uuid_ids, held_out),
                unfiltered_queries(conn, n, per_run, held_out), random_ids(conn, n, per_run),
                {h: random_ids(conn, n, per_run) for h in hops})
