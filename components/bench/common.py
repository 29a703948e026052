"""What every part of the bench shares: its error, options, scratch-schema names, constants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from components.connection import DSN_ENV as DSN_ENV  # re-exported: bench.DSN_ENV
from components.identifiers import qualified, quote_ident
from components.settings import MEM0_DEFAULT_LIMIT, Settings

APPLICATION = "mem0infra-bench"
# mem0 2.2.1's search LIMIT by default: Memory.search over-fetches max(top_k * 4, 60) rows
# with top_k 20 (mem0-contract.md 4).
LIMIT = MEM0_DEFAULT_LIMIT
RECALL_AT = (10, LIMIT)  # recall@10 (what a top-10 caller keeps) and of the whole page
LIST_LIMIT = 100  # mem0's list (get_all) binds its limit; 100 is its default page
# Untimed runs before each measurement: psycopg prepares a statement on its 6th execution
# (prepare_threshold=5), so the timed runs see what a long-lived mem0 pool connection sees.
WARMUP = 5
DEFAULT_SAMPLES = 200  # timed runs per measurement
DEFAULT_SEED = 0.25  # of the generated data (PostgreSQL's setseed)


class BenchError(ValueError):
    """The bench could not run (exit code 2): bad arguments, no database, no pgvector."""


@dataclass(frozen=True)
class Options:
    rows: int
    users: int
    samples: int
    seed: float
    rls: bool = False  # also measure row-level security (components.bench.rls)
    # user ids 00000000-0000-4000-8000-<user number> instead of user_<n>: the seed's policy
    # compares auth.uid()::text, a uuid's text, with them (only --rls asks for it)
    uuid_user_ids: bool = False
    distribution: str = "uniform"  # memories per user (components.bench.users)
    as_role: str = "app"  # app: a throwaway app role under its RLS; owner: the connecting role
    compare: str | None = None  # "mem0-default": also time mem0's own table alongside
    embedder: str = "synthetic"  # minilm: real texts and embeddings (components.bench.realdata)


@dataclass(frozen=True)
class Names:
    """Qualified SQL names in the scratch schema, and pgvector's type and operators."""

    scratch: str
    settings: Settings

    def obj(self, name: str) -> str:
        return qualified(self.scratch, name)

    @property
    def memories(self) -> str:
        return self.obj(self.settings.collection)

    @property
    def vector(self) -> str:
        return qualified(self.settings.extension_schema, "vector")

    def op(self, symbol: str) -> str:
        # The session's search_path is empty: pgvector's operators must be named with schema.
        return f"OPERATOR({quote_ident(self.settings.extension_schema)}.{symbol})"


def _set(conn: psycopg.Connection[Any], name: str, value: str, local: bool = False) -> None:
    conn.execute("SELECT pg_catalog.set_config(%s, %s, %s)", (name, value, local))
