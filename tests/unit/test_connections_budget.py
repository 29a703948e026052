"""The connections report's budget rule and verdict, on hand-made slots (the live report is
tests/integration/test_connections.py)."""

from __future__ import annotations

import pytest

from components import mem0
from components.connections.activity import Group, Slots
from components.connections.budget import Basis, PoolShape, Verdict, assess
from components.connections.pooler import PoolerUnavailable, PoolerView

APP = "mem0_app"


def slots(in_use: int, reserved: int | None = None, **limits: int) -> Slots:
    return Slots(100, 3, reserved, in_use, dict(limits))


def test_a_memory_holds_two_pools_of_maxconn_and_the_telemetry_pool_of_minconn() -> None:
    assert mem0.connections_per_memory() == 2 * 5 + 1 == 11
    assert mem0.connections_per_memory(2, 10) == 22
    assert mem0.connections_per_memory(1, 5, telemetry=False) == 10
    assert PoolShape(4).clients == 44


@pytest.mark.parametrize(("processes", "verdict"), [
    (1, Verdict.OK), (6, Verdict.OK), (7, Verdict.TIGHT), (8, Verdict.OVER),
    (9, Verdict.OVER)])
def test_the_verdict_against_the_slots_left(processes: int, verdict: Verdict) -> None:
    # 97 non-superuser slots, 10 held by others: 87 for the app (80 % is 69.6).
    budget = assess(PoolShape(processes), slots(10), [], APP, None)
    assert (budget.available, budget.need, budget.verdict) == (87, 11 * processes, verdict)
    assert budget.basis == Basis.DIRECT


def test_the_apps_own_connections_are_not_counted_against_it() -> None:
    groups = [Group(APP, "api", "idle", "10.0.0.1", "db", 30), Group("other", "", "idle",
                                                                     "10.0.0.2", "db", 5)]
    budget = assess(PoolShape(1), slots(36), groups, APP, None)
    assert (budget.app_now, budget.others, budget.available) == (30, 6, 91)


def test_reserved_connections_and_the_roles_limit_narrow_the_room() -> None:
    assert slots(0, reserved=7).for_non_superusers == 90
    budget = assess(PoolShape(1), slots(1, **{APP: 10}), [], APP, None)
    assert (budget.limit, budget.verdict) == (10, Verdict.OVER)


def view(mode: str, size: int, max_client_conn: int = 100) -> PoolerView:
    return PoolerView("postgresql://u@h:6432/db", "db", "u", [], [], mode, size,
                      max_client_conn)


def test_behind_a_transaction_pooler_the_server_holds_the_pool() -> None:
    budget = assess(PoolShape(20), slots(1), [], APP, view("transaction", 15, 1000))
    assert (budget.basis, budget.need, budget.verdict) == (Basis.POOLER, 15, Verdict.OK)
    # ... but the pooler itself refuses clients past max_client_conn.
    assert assess(PoolShape(20), slots(1), [], APP, view("transaction", 15, 100)).verdict \
        == Verdict.OVER
    # A session pooler gives each client a server connection: counted directly.
    session = assess(PoolShape(20), slots(1), [], APP, view("session", 15))
    assert (session.basis, session.need) == (Basis.DIRECT, 220)
    unknown = assess(PoolShape(1), slots(1), [], APP, PoolerUnavailable("x", "refused"))
    assert unknown.basis == Basis.DIRECT
