"""What every part of the bench shares: its error, options, scratch-schema names, constants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from components import mem0
from components.connection import DSN_ENV as DSN_ENV  # re-exported: bench.DSN_ENV
from components.errors import Mem0InfraError
from components.identifiers import qualified, quote_ident
from components.settings import Settings

__all__ = ["APPLICATION", "DEFAULT_SAMPLES", "DEFAULT_SEED", "DSN_ENV", "LIMIT", "LIST_LIMIT",
           "RECALL_AT", "WARMUP", "BenchError", "Names", "Options", "set_setting"]

APPLICATION = "mem0infra-bench"
LIMIT = mem0.DEFAULT_SEARCH_LIMIT  # what Memory.search asks with its default top_k
RECALL_AT = (10, LIMIT)  # recall@10 (what a top-10 caller keeps) and of the whole page
LIST_LIMIT = mem0.DEFAULT_LIST_LIMIT  # mem0's list binds its limit; 100 is its default page
# Untimed runs before each measurement: psycopg prepares a statement after this many
# executions, so the timed runs see what a long-lived mem0 pool connection sees.
WARMUP = mem0.PREPARE_THRESHOLD
DEFAULT_SAMPLES = 200  # timed runs per measurement
DEFAULT_SEED = 0.25  # of the generated data (PostgreSQL's setseed)


class BenchError(Mem0InfraError):
    """The bench could not run (exit code 2, ExitCode.UNUSABLE): bad arguments, no
    database, no pgvector."""


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

    @property
    def statements(self) -> mem0.Statements:
        """mem0's statements on this schema's memories table."""
        return mem0.Statements.qualified_names(self.memories, self.settings.extension_schema)

    def op(self, symbol: str) -> str:
        # The session's search_path is empty: pgvector's operators must be named with schema.
        return f"OPERATOR({quote_ident(self.settings.extension_schema)}.{symbol})"


def set_setting(conn: psycopg.Connection[Any], name: str, value: str,
                local: bool = False) -> None:
    """set_config(name, value, local): a setting's value bound, never formatted."""
    conn.execute("SELECT pg_catalog.set_config(%s, %s, %s)", (name, value, local))
