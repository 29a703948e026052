"""One report's worth of facts, read in one read-only transaction (nothing is written),
and what in it fails the command."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from components.connections import activity
from components.connections.activity import Group, Session, Slots
from components.connections.budget import Budget, PoolShape, Verdict, assess
from components.connections.pooler import PoolerUnavailable, PoolerView, pooler_view
from components.connections.roles import RoleKind, project_roles
from components.settings import Settings


@dataclass(frozen=True)
class Options:
    long_seconds: float  # a statement running longer is named
    idle_limit: float  # idle in transaction longer fails the report
    shape: PoolShape
    pooler_url: str | None


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    server: str  # host:port/dbname, no credentials
    version: str
    session_user: str
    stack: str
    roles: dict[str, RoleKind]
    groups: list[Group]
    idle_in_transaction: list[Session]
    long_running: list[Session]
    slots: Slots
    pooler: PoolerView | PoolerUnavailable | None
    budget: Budget
    options: Options

    def kind(self, role: str) -> RoleKind | None:
        return self.roles.get(role)

    @property
    def stale(self) -> list[Session]:
        """Sessions idle in a transaction for longer than the limit."""
        return [s for s in self.idle_in_transaction
                if s.state_seconds > self.options.idle_limit]

    @property
    def problems(self) -> list[str]:
        found = [f"mem0's budget is over: {self.budget.need} connections needed, "
                 f"{self.budget.limit} available"] if self.budget.verdict == Verdict.OVER \
            else []
        found += [f"pid {s.pid} ({s.role}) idle in transaction for {s.state_seconds:.0f} s "
                  f"(limit {self.options.idle_limit:g} s)" for s in self.stale]
        return found


def take_snapshot(conn: psycopg.Connection, settings: Settings, server: str,
                  options: Options) -> Snapshot:
    """Read everything in one read-only transaction: pg_stat_activity is one consistent
    snapshot for a transaction, so the groups, sessions and slots agree."""
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        row = conn.execute("SELECT pg_catalog.now(), pg_catalog.current_setting("
                           "'server_version'), session_user").fetchone()
        assert row is not None
        taken_at, version, session_user = row
        groups = activity.groups(conn)
        idle = activity.idle_in_transaction(conn)
        long = activity.long_running(conn, options.long_seconds)
        slots = activity.slots(conn)
    pooler = pooler_view(options.pooler_url) if options.pooler_url else None
    budget = assess(options.shape, slots, groups, settings.app_role, pooler)
    return Snapshot(taken_at, server, version, session_user, settings.stack,
                    project_roles(settings, session_user), groups, idle, long, slots,
                    pooler, budget, options)
