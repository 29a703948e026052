"""What every part of the bench shares: its error, options, scratch-schema names, constants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from components.connection import DSN_ENV as DSN_ENV  # re-exported: bench.DSN_ENV
from components.identifiers import qualified, quote_ident
from components.settings import Settings

APPLICATION = "mem0infra-bench"
TOP_K = 10
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
