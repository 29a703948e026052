"""The pooler's own view: PgBouncer's admin console (`SHOW POOLS`, `SHOW STATS`, with its
pool size and mode), read with the poolerUrl's login.

The console is the virtual database `pgbouncer` on the pooler's host and port; PgBouncer
lets in only the users of its admin_users or stats_users. The console is documented to
speak the simple query protocol only; the statements go through psycopg's client-side
cursor, which sends them as plain text, never prepared (against PgBouncer 1.18 the
default cursor with prepare=False also worked, for statements without parameters: a
behaviour not to lean on). Any refusal, and any pooler without
such a console (Supavisor), becomes `PoolerUnavailable` with the reason: the report goes
on without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg

from components.checks.pooler import redacted

APPLICATION = "mem0infra-connections"
CONSOLE_DATABASE = "pgbouncer"
CONNECT_TIMEOUT_S = 10
# The columns the text report shows; JSON and Markdown carry every column.
POOL_COLUMNS = ("database", "user", "cl_active", "cl_waiting", "sv_active", "sv_idle",
                "sv_used", "maxwait", "pool_mode")
STATS_COLUMNS = ("database", "total_xact_count", "total_query_count", "avg_xact_time",
                 "avg_query_time", "avg_wait_time")

Row = dict[str, Any]


@dataclass(frozen=True)
class PoolerView:
    """What the console showed, and what of it the budget needs."""

    url: str  # redacted
    database: str  # the poolerUrl's database and user: the application's pool
    user: str
    pools: list[Row]
    stats: list[Row]
    pool_mode: str | None  # of the application's pool (else the pooler's default)
    pool_size: int | None  # server connections per database and user
    max_client_conn: int | None

    @property
    def transaction_mode(self) -> bool:
        """Whether clients share server connections per transaction (or statement): then
        the server sees the pool, not the clients."""
        return self.pool_mode in ("transaction", "statement")


@dataclass(frozen=True)
class PoolerUnavailable:
    url: str  # redacted, or a placeholder when the URL is not readable
    reason: str


def _json_safe(value: Any) -> Any:
    return value if value is None or isinstance(value, int | float | str | bool) else str(value)


def _show(conn: psycopg.Connection, what: str) -> list[Row]:
    cur = conn.cursor()
    cur.execute(f"SHOW {what}")  # a fixed word of this module, never input
    names = [column.name for column in cur.description or ()]
    return [{n: _json_safe(v) for n, v in zip(names, row, strict=True)}
            for row in cur.fetchall()]


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def console_url(pooler_url: str) -> str:
    """The same pooler, login and options, database `pgbouncer`."""
    parts = urlsplit(pooler_url)
    return parts._replace(path="/" + CONSOLE_DATABASE).geturl()


def pooler_view(pooler_url: str) -> PoolerView | PoolerUnavailable:
    url = redacted(pooler_url)
    try:
        parts = urlsplit(pooler_url)
        database = unquote(parts.path.lstrip("/")) or unquote(parts.username or "")
        user = unquote(parts.username or "")
    except ValueError as exc:
        return PoolerUnavailable(url, f"poolerUrl is not a URL ({exc})")
    try:
        with psycopg.connect(console_url(pooler_url), autocommit=True,
                             prepare_threshold=None, cursor_factory=psycopg.ClientCursor,
                             connect_timeout=CONNECT_TIMEOUT_S,
                             application_name=APPLICATION) as conn:
            pools = _show(conn, "POOLS")
            stats = _show(conn, "STATS")
            databases = _show(conn, "DATABASES")
            config = {str(row.get("key")): row.get("value") for row in _show(conn, "CONFIG")}
    except psycopg.Error as exc:
        return PoolerUnavailable(url, " ".join(str(exc).split()) or type(exc).__name__)
    mine = next((p for p in pools if p.get("database") == database and p.get("user") == user),
                None)
    entry = next((d for d in databases if d.get("name") == database), None)
    mode = (mine or {}).get("pool_mode") or (entry or {}).get("pool_mode") \
        or config.get("pool_mode")
    size = _int((entry or {}).get("pool_size"))
    if size is None or size < 0:
        size = _int(config.get("default_pool_size"))
    return PoolerView(url, database, user, pools, stats, str(mode) if mode else None, size,
                      _int(config.get("max_client_conn")))
