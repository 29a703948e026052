"""One plan: the stack's objects that differ with their steps and hazards (index builds
estimated under the current load), and the access changes in words."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from components.connection import database_identity, open_session
from components.errors import Mem0InfraError
from components.kinds.steps import HazardKind, PlanStep
from components.model import build_model
from components.plan.access import AccessChange, access_changes
from components.plan.estimate import SAMPLE_SECONDS, Load, estimate, read_load
from components.plan.objects import Action, ObjectPlan, plan_objects, with_hazards
from components.settings import Settings

APPLICATION = "mem0infra-plan"


class PlanError(Mem0InfraError):
    """The plan could not run (no database, a failed catalog read): exit code 2."""


@dataclass(frozen=True)
class Plan:
    stack: str
    database: str  # host:port/dbname, no credentials
    objects: tuple[ObjectPlan, ...]
    access: tuple[AccessChange, ...]
    loads: dict[str, Load]  # per table with an index build: the load it was estimated under

    @property
    def changed(self) -> bool:
        return bool(self.objects or self.access)

    def count(self, action: Action) -> int:
        return sum(1 for o in self.objects if o.action == action)

    def hazard_count(self, kind: HazardKind) -> int:
        return sum(1 for o in self.objects for h in o.hazards if h.kind == kind)


def _estimated(conn: psycopg.Connection, objects: list[ObjectPlan],
               sample_seconds: float) -> tuple[list[ObjectPlan], dict[str, Load]]:
    """The index builds' hazards with their estimated time, one load sample per table."""
    loads: dict[str, Load] = {}
    done = []
    with conn.cursor() as cur:
        for plan in objects:
            steps = []
            for step in plan.steps:
                hazards = []
                for hazard in step.hazards:
                    if hazard.kind == HazardKind.INDEX_BUILD:
                        if hazard.on not in loads:
                            loads[hazard.on] = read_load(conn, hazard.on, sample_seconds)
                        hazard = estimate(cur, hazard, plan.declared or "", loads[hazard.on])
                    hazards.append(hazard)
                steps.append(PlanStep(step.sql, tuple(hazards)))
            done.append(with_hazards(plan, tuple(steps)))
    return done, loads


def _without_new_table_locks(objects: list[ObjectPlan]) -> list[ObjectPlan]:
    """A lock on a table the same `up` creates blocks no one: leave it out."""
    new = {o.key.split(":", 1)[1] for o in objects
           if o.action == Action.CREATE and o.kind == "table"}
    return [with_hazards(o, tuple(PlanStep(s.sql, tuple(
        h for h in s.hazards if not (h.kind == HazardKind.LOCK and h.on in new)))
        for s in o.steps)) for o in objects]


def make_plan(dsn: str, settings: Settings,
              sample_seconds: float = SAMPLE_SECONDS) -> Plan:
    """Compare the stack's declared objects with the database at `dsn`; reads only."""
    specs = build_model(settings)
    with open_session(dsn, APPLICATION, PlanError) as conn:
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("SET TRANSACTION READ ONLY")
                objects = plan_objects(conn, specs, settings.allow_data_loss)
                access = access_changes(conn, settings, specs)
            objects, loads = _estimated(conn, _without_new_table_locks(objects),
                                        sample_seconds)
        except psycopg.Error as exc:
            raise PlanError(f"could not read the database ({database_identity(dsn)}): "
                            f"{str(exc).strip()}") from exc
    return Plan(settings.stack, database_identity(dsn), tuple(objects), tuple(access),
                loads)


__all__ = ["Plan", "PlanError", "make_plan"]
