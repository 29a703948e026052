"""The connections mem0 needs against what the server leaves it, and the verdict.

Per process, one `Memory` holds at most `mem0.connections_per_memory()` server connections
(2 x maxconn + minconn with telemetry on: docs/connections.md says why it is not the
round 3 x maxconn). Connected directly (or through a session-mode pooler, which gives
each client its own server connection), the server must hold processes x that many
beside every other role's connections; behind a transaction-mode pooler it holds only the
pooler's pool for the app's database and user, however many clients wait on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from components import mem0
from components.connections.activity import Group, Slots
from components.connections.pooler import PoolerUnavailable, PoolerView

TIGHT_SHARE = 0.8  # above this share of the slots left, the budget is tight


class Verdict(StrEnum):
    OK = "ok"
    TIGHT = "tight"
    OVER = "over"


class Basis(StrEnum):
    """Which connections reach the server."""

    DIRECT = "direct"  # each of mem0's pooled connections is a server connection
    POOLER = "transaction pooler"  # the pooler's pool size is what reaches the server


@dataclass(frozen=True)
class PoolShape:
    """mem0's pools as the application configures them."""

    processes: int
    minconn: int = mem0.POOL_MINCONN
    maxconn: int = mem0.POOL_MAXCONN
    telemetry: bool = True

    @property
    def per_process(self) -> int:
        return mem0.connections_per_memory(self.minconn, self.maxconn, self.telemetry)

    @property
    def clients(self) -> int:
        return self.processes * self.per_process


@dataclass(frozen=True)
class Budget:
    shape: PoolShape
    basis: Basis
    need: int  # server connections mem0 may hold
    slots: int  # for non-superusers
    others: int  # client connections of every other role (this session included)
    app_now: int  # the app role's connections now
    available: int  # slots - others: what the app may take
    role_limit: int | None  # the app role's rolconnlimit, when set
    pooler_clients: int | None  # behind a transaction pooler: its max_client_conn
    verdict: Verdict

    @property
    def limit(self) -> int:
        """The tighter of the slots left and the app role's own limit."""
        return min(self.available, self.role_limit) if self.role_limit is not None \
            else self.available


def _verdict(need: int, limit: int) -> Verdict:
    if need > limit:
        return Verdict.OVER
    return Verdict.TIGHT if need > TIGHT_SHARE * limit else Verdict.OK


def assess(shape: PoolShape, slots: Slots, groups: list[Group], app_role: str,
           pooler: PoolerView | PoolerUnavailable | None) -> Budget:
    app_now = sum(g.count for g in groups if g.role == app_role)
    others = slots.in_use - app_now
    available = max(slots.for_non_superusers - others, 0)
    role_limit = slots.role_limits.get(app_role)
    behind = isinstance(pooler, PoolerView) and pooler.transaction_mode \
        and pooler.pool_size is not None
    if behind:
        assert isinstance(pooler, PoolerView) and pooler.pool_size is not None
        need, basis, clients = pooler.pool_size, Basis.POOLER, pooler.max_client_conn
    else:
        need, basis, clients = shape.clients, Basis.DIRECT, None
    limit = min(available, role_limit) if role_limit is not None else available
    verdict = _verdict(need, limit)
    if clients is not None and shape.clients > clients:
        verdict = Verdict.OVER  # the pooler itself turns mem0's clients away
    return Budget(shape, basis, need, slots.for_non_superusers, others, app_now, available,
                  role_limit, clients, verdict)
