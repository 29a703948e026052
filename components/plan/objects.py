"""Declared against live, object by object: which objects `up` would create, change or
drop, and each one's steps from its kind's planner.

The comparison is drift's: each declared object's canonical DDL against what the kind's
reader rebuilds from the catalog (`introspect.live_ddl_or_none`). A difference is either a
settings change or a hand edit; without the stack's state the two cannot be told apart,
and `up` runs the same statements for both. Policies on the stack's tables that it does
not declare are listed as drops: `up` drops the ones an earlier deployment made.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import psycopg

from components.errors import Mem0InfraError
from components.identifiers import qualified
from components.introspect import live_ddl_or_none
from components.kinds import Kind, kind_spec
from components.kinds.policy import read_policies
from components.kinds.steps import Hazard, HazardKind, Lock, PlanStep, lock
from components.model import ObjectSpec


class Action(StrEnum):
    CREATE = "create"  # declared, not in the database
    CHANGE = "change"  # declared and live differ: a settings change or drift
    DROP = "drop"  # in the database on the stack's tables, no longer declared


@dataclass(frozen=True)
class ObjectPlan:
    key: str
    label: str
    kind: str
    action: Action
    steps: tuple[PlanStep, ...]
    declared: str | None  # the canonical text (None for a drop)
    live: str | None  # what the catalog shows (None for a create)

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        return tuple(h for step in self.steps for h in step.hazards)


def spec_props(spec: ObjectSpec, allow_data_loss: bool) -> dict[str, Any]:
    """What a resource's inputs would carry for the spec, without the connection: what
    the readers and planners read (`provider.object_inputs` without Pulumi)."""
    props: dict[str, Any] = {
        "kind": spec.kind, "schema": spec.schema, "name": spec.name, "table": spec.table,
        "role": spec.role, "on": spec.on, "arguments": spec.arguments, "ddl": spec.ddl,
        "drop_sql": spec.drop_sql, "allow_data_loss": allow_data_loss}
    if spec.fields is not None:
        props["fields"] = kind_spec(spec.kind).input_fields(spec.fields)
    return props


def _steps(cur: psycopg.Cursor[Any], spec: ObjectSpec, props: dict[str, Any],
           live: str | None, allow_data_loss: bool) -> tuple[PlanStep, ...]:
    kind = kind_spec(spec.kind)
    try:
        with cur.connection.transaction():  # a savepoint: a failed read leaves no trace
            return tuple(kind.planned(cur, kind.change(props, live, None, allow_data_loss)))
    except Mem0InfraError as exc:  # apply would refuse it the same way
        return (PlanStep("", (Hazard(HazardKind.REFUSED, str(exc)),)),)


def plan_objects(conn: psycopg.Connection, specs: list[ObjectSpec],
                 allow_data_loss: bool) -> list[ObjectPlan]:
    """Every object that differs, in the model's order (dependencies first), then the
    undeclared policies on the stack's tables."""
    plans: list[ObjectPlan] = []
    with conn.cursor() as cur:
        for spec in specs:
            props = spec_props(spec, allow_data_loss)
            live = live_ddl_or_none(cur, props)
            if live == spec.ddl:
                continue
            action = Action.CREATE if live is None else Action.CHANGE
            plans.append(ObjectPlan(spec.key, kind_spec(spec.kind).label(props), spec.kind,
                                    action, _steps(cur, spec, props, live, allow_data_loss),
                                    spec.ddl, live))
        plans += _undeclared_policies(cur, specs)
    return plans


def _undeclared_policies(cur: psycopg.Cursor[Any],
                         specs: list[ObjectSpec]) -> list[ObjectPlan]:
    declared = {(s.schema, s.table, s.name) for s in specs if s.kind == Kind.POLICY}
    found = []
    for table in (s for s in specs if s.kind == Kind.TABLE):
        name = qualified(table.schema, table.name)
        for policy in read_policies(cur, name):
            if (table.schema, table.name, policy.name) in declared:
                continue
            hazard = lock(Lock.ACCESS_EXCLUSIVE, name, "DROP POLICY (brief)")
            found.append(ObjectPlan(
                f"policy:{table.schema}.{policy.name}", f"policy {table.schema}.{policy.name}",
                Kind.POLICY, Action.DROP, (PlanStep(policy.drop_sql(), (hazard,)),), None,
                policy.ddl()))
    return found


def with_hazards(plan: ObjectPlan, steps: tuple[PlanStep, ...]) -> ObjectPlan:
    return dataclasses.replace(plan, steps=steps)
