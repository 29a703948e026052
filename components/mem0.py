"""mem0 2.2.1's wire contract with PostgreSQL, in one place: what its pgvector store sends.

Everything the project restates about mem0's Python SDK lives here, and the bench, the
post-deploy checks (`checks.validate`, `checks.pooler`), the program's outputs and the
tests take it from here (../shared/reference/mem0-contract.md, sections 3 to 7):

- `Statements`: its DML exactly as `mem0/vector_stores/pgvector.py` issues it (search with
  and without a filter, keyword search, get by id, list, insert, update, delete), either
  verbatim (unqualified names: a session whose search_path finds them, as mem0's) or with
  every name qualified (this project's sessions run with an empty search_path);
- `search_limit()` and `DEFAULT_SEARCH_LIMIT`: the LIMIT `Memory.search` and `get_all` ask;
- `payload()`: the flat JSONB payload it writes;
- `POOL_MINCONN`, `POOL_MAXCONN` and `connections_per_memory()`: the pools a `Memory` opens
  and the server connections they hold (the `connections` command's budget);
- `PREPARE_THRESHOLD` and `CONNECTION_GUIDANCE`: psycopg's server-side prepared statements,
  which mem0 leaves on, and how to connect mem0 so that they do not break behind a
  transaction-mode pooler.

mem0 binds a vector as a Python list of floats: psycopg sends it as a float8[] array,
which `%s::vector` (search) or the column's assignment cast (insert, update) converts. Code
that measures mem0's own behaviour binds lists the same way; see `components.vectors`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import md5
from typing import Any, Final

from components.identifiers import qualified, quote_ident

__all__ = ["CONNECTION_GUIDANCE", "DEFAULT_LIST_LIMIT", "DEFAULT_SEARCH_LIMIT",
           "DEFAULT_TOP_K", "PAYLOAD_KEYS", "POOL_MAXCONN", "POOL_MINCONN",
           "POOL_WITHOUT_PREPARED_STATEMENTS", "PREPARE_THRESHOLD", "USER_KEY", "VERSION",
           "Statements", "connections_per_memory", "payload", "payload_json", "search_limit",
           "search_params", "timestamp"]

VERSION: Final = "2.2.1"

# --- the LIMIT it asks (contract 4) -----------------------------------------------------------

DEFAULT_TOP_K: Final = 20  # Memory.search and Memory.get_all
_OVERFETCH, _MIN_LIMIT = 4, 60


def search_limit(top_k: int = DEFAULT_TOP_K) -> int:
    """The LIMIT mem0 sends for `top_k`: it over-fetches max(top_k * 4, 60) rows and ranks
    them itself (Memory.search; get_all lists with the same formula)."""
    return max(top_k * _OVERFETCH, _MIN_LIMIT)


# 80: an HNSW scan returns at most hnsw.ef_search rows (pgvector's default 40).
DEFAULT_SEARCH_LIMIT: Final = search_limit(DEFAULT_TOP_K)
# The vector store's list() pages by 100 unless told otherwise (its default top_k).
DEFAULT_LIST_LIMIT: Final = 100

# --- its statements (contract 3 and 8) --------------------------------------------------------

USER_KEY: Final = "user_id"  # the payload key mem0's user filter binds


@dataclass(frozen=True)
class Statements:
    """mem0's statements on one table. Filters are mem0's `payload->>%s = %s`, the key bound
    too; parameters are in mem0's order (the vector first, the limit last)."""

    table: str  # SQL text naming the table
    vector_type: str = "vector"
    distance: str = "<=>"  # cosine distance

    @classmethod
    def verbatim(cls, collection: str) -> Statements:
        """As mem0 sends them: the table quoted (psycopg's sql.Identifier), the type and the
        operator unqualified, found through the session's search_path."""
        return cls('"' + collection.replace('"', '""') + '"')

    @classmethod
    def qualified_names(cls, table: str, extension_schema: str) -> Statements:
        """For a session with an empty search_path: `table` already qualified, pgvector's
        type and operator named by the schema it lives in."""
        return cls(table, qualified(extension_schema, "vector"),
                   f"OPERATOR({quote_ident(extension_schema)}.<=>)")

    def search(self, filtered: bool = True) -> str:
        """Semantic search, by one payload key (`payload->>%s = %s`) or over every row."""
        where = " WHERE payload->>%s = %s" if filtered else ""
        return (f"SELECT id, vector {self.distance} %s::{self.vector_type} AS distance,"
                f" payload FROM {self.table}{where} ORDER BY distance LIMIT %s")

    def keyword_search(self, filtered: bool = True) -> str:
        """Keyword search over text_lemmatized (its GIN index), by one payload key or over
        every row; parameters: the query twice, [the key, its value,] the limit."""
        document = "to_tsvector('simple', payload->>'text_lemmatized')"
        query = "plainto_tsquery('simple', %s)"
        where = " AND payload->>%s = %s" if filtered else ""
        return (f"SELECT id, ts_rank_cd({document}, {query}) AS score, payload"
                f" FROM {self.table} WHERE {document} @@ {query}{where}"
                " ORDER BY score DESC LIMIT %s")

    def get(self) -> str:
        return f"SELECT id, payload FROM {self.table} WHERE id = %s"

    def list(self) -> str:
        """get_all and delete_all: one payload-key filter, no ORDER BY, the limit bound."""
        return f"SELECT id, payload FROM {self.table} WHERE payload->>%s = %s LIMIT %s"

    def insert(self) -> str:
        """Not an upsert: a duplicate id is a primary-key violation. mem0 runs it with
        executemany, so psycopg prepares it at its first execution."""
        return f"INSERT INTO {self.table} (id, vector, payload) VALUES (%s, %s, %s)"

    def update_vector(self) -> str:
        return f"UPDATE {self.table} SET vector = %s WHERE id = %s"

    def update_payload(self) -> str:
        """The payload is replaced whole."""
        return f"UPDATE {self.table} SET payload = %s WHERE id = %s"

    def delete(self) -> str:
        return f"DELETE FROM {self.table} WHERE id = %s"


def search_params(vector: Any, user: str | None,
                  limit: int = DEFAULT_SEARCH_LIMIT) -> tuple[Any, ...]:
    """`Statements.search`'s parameters: filtered by `user` unless it is None."""
    return (vector, USER_KEY, user, limit) if user is not None else (vector, limit)


# --- its payload (contract 7) -----------------------------------------------------------------

# The keys mem0 writes for add(infer=False), in its order (flat: metadata keys join them).
PAYLOAD_KEYS: Final = ("data", "hash", "role", "user_id", "created_at", "updated_at",
                       "text_lemmatized")


def timestamp() -> str:
    """Now, as mem0 writes created_at and updated_at: ISO-8601 in UTC."""
    return datetime.now(UTC).isoformat()


def payload(text: str, *, user_id: str | None = None, digest: str | None = None,
            role: str | None = "user", created_at: str | None = None,
            updated_at: str | None = None, lemmatized: str | None = None,
            **extra: Any) -> dict[str, Any]:
    """A memory's payload as mem0 writes it: `data`, `hash` (`digest`, by default the MD5
    hex of the text, as mem0's), `role`, `user_id`, the timestamps, `text_lemmatized` (by
    default the text: mem0 without spaCy), then `extra` keys (agent_id, run_id, metadata,
    all flat). A key given as None (role, user_id, a timestamp) is left out."""
    found: dict[str, Any] = {
        "data": text, "hash": md5(text.encode()).hexdigest() if digest is None else digest,
        "role": role, "user_id": user_id, "created_at": created_at, "updated_at": updated_at,
        "text_lemmatized": text if lemmatized is None else lemmatized}
    return {**{k: v for k, v in found.items() if v is not None}, **extra}


def payload_json(text: str, **fields: Any) -> str:
    """`payload(...)` as the JSON text mem0 binds (json.dumps)."""
    return json.dumps(payload(text, **fields))


# --- connections a Memory opens (contract 5) --------------------------------------------------

# PGVector's pool bounds when the config sets neither (mem0/configs/vector_stores/pgvector.py);
# the stack's mem0Config sets neither, so these are what a deployed application uses.
POOL_MINCONN: Final = 1
POOL_MAXCONN: Final = 5


def connections_per_memory(minconn: int = POOL_MINCONN, maxconn: int = POOL_MAXCONN,
                           telemetry: bool = True) -> int:
    """The most server connections one `Memory` of mem0 2.2.1 holds.

    Each `PGVector` owns a psycopg pool of minconn..maxconn. A Memory builds up to three:
    the main store and the entity store (`<collection>_entities`, built on its first use:
    a delete, or entity linking where spaCy is installed) each grow to maxconn under
    concurrent calls; the telemetry store (`mem0migrations`, built at init while
    MEM0_TELEMETRY is on, its default) is never queried afterwards, so its pool stays at
    minconn. Hence 2 x maxconn + minconn: the issue's round 3 x maxconn over-counts the
    telemetry pool (docs/connections.md)."""
    return 2 * maxconn + (minconn if telemetry else 0)


# --- prepared statements and poolers (contract 5) ---------------------------------------------

# psycopg's default, which mem0 keeps: a statement run this many times on a connection is
# prepared at its next execution (an executemany, mem0's insert, at its first), under a
# name (_pg3_N) that exists on that one server connection only.
PREPARE_THRESHOLD: Final = 5
POOL_WITHOUT_PREPARED_STATEMENTS: Final = (
    "config['vector_store']['config']['connection_pool'] = psycopg_pool.ConnectionPool("
    "conninfo, kwargs={'prepare_threshold': None}, open=False)")
# The program's poolerGuidance output, and the pooler check's fix.
CONNECTION_GUIDANCE: Final = (
    "Connect mem0 directly or through a session-mode pooler (Supabase: port 5432). Behind a "
    "transaction-mode pooler (Supavisor port 6543, PgBouncer pool_mode=transaction) psycopg's "
    "server-side prepared statements break: pass mem0 a pool that disables them, "
    f"{POOL_WITHOUT_PREPARED_STATEMENTS}, instead of connection_string. "
    "Budget 2 x maxconn + minconn connections per Memory and process (main store, entity "
    f"store, telemetry store; mem0's defaults {POOL_MINCONN}..{POOL_MAXCONN} make "
    f"{connections_per_memory()}); `python -m components "
    "connections --processes N` checks that against the server.")
