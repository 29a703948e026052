"""What a kind's planner returns: the statements `up` would run for one object, each with
its hazards as data (the lock it takes and on what, an index build, rows lost, a rewrite).

A planner only reads the catalog. Where a kind's apply runs a fixed sequence, the planner
and `ensure` build it with the same function of the kind's module, so what the plan shows
is what apply runs. `components.plan` adds what needs more than the object (an index
build's estimated time under the server's current load) and renders the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class HazardKind(StrEnum):
    """What a reviewer should weigh before a step runs against a live database."""

    LOCK = "lock"  # a lock that blocks mem0's reads or writes while the statement runs
    INDEX_BUILD = "index_build"  # an index built over existing rows (takes time)
    ROWS_LOST = "rows_lost"  # stored values or rows go (counted)
    TABLE_REWRITE = "table_rewrite"  # every row is rewritten under ACCESS EXCLUSIVE
    REFUSED = "refused"  # apply refuses the step unless the stack allows it
    NEW_SESSIONS = "new_sessions"  # takes effect only for sessions opened afterwards


class Lock(StrEnum):
    """PostgreSQL's table lock modes a plan names (what each blocks is in docs/plan.md)."""

    ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"  # blocks every read and write
    SHARE_ROW_EXCLUSIVE = "SHARE ROW EXCLUSIVE"  # blocks writes
    SHARE = "SHARE"  # blocks writes (CREATE INDEX without CONCURRENTLY)
    SHARE_UPDATE_EXCLUSIVE = "SHARE UPDATE EXCLUSIVE"  # blocks no read or write


@dataclass(frozen=True)
class Hazard:
    kind: HazardKind
    message: str
    on: str = ""  # the table (qualified) the hazard is about
    lock: str = ""  # a `Lock` value, for LOCK and INDEX_BUILD hazards
    rows: int | None = None  # ROWS_LOST: how many; INDEX_BUILD: the table's rows
    seconds: float | None = None  # INDEX_BUILD: the estimate `components.plan` adds
    method: str = ""  # INDEX_BUILD: the index's access method (hnsw, ivfflat, btree, ...)


@dataclass(frozen=True)
class PlanStep:
    """One statement `up` would run, with what to weigh before it runs."""

    sql: str
    hazards: tuple[Hazard, ...] = ()


def lock(mode: Lock, table: str, why: str) -> Hazard:
    """A LOCK hazard: `mode` on `table` while `why` runs."""
    blocks = {Lock.ACCESS_EXCLUSIVE: "blocks every read and write",
              Lock.SHARE_ROW_EXCLUSIVE: "blocks writes",
              Lock.SHARE: "blocks writes",
              Lock.SHARE_UPDATE_EXCLUSIVE: "blocks no read or write"}[mode]
    return Hazard(HazardKind.LOCK, f"{mode} lock on {table} ({blocks}) for {why}",
                  on=table, lock=mode)


def plain_steps(statements: list[str], *hazards: Hazard) -> list[PlanStep]:
    """Steps of statements that share the same hazards (one transaction's)."""
    return [PlanStep(s if s.endswith(";") else f"{s};", tuple(hazards)) for s in statements]
