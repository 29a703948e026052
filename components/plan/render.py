"""A plan as text for a terminal, as Markdown for a pull-request comment, and as JSON."""

from __future__ import annotations

from collections import Counter
from typing import Any

from components.kinds.steps import Hazard, HazardKind
from components.plan.build import Plan
from components.plan.estimate import duration
from components.plan.objects import Action, ObjectPlan

NO_CHANGES = "no changes"


def summary(plan: Plan) -> str:
    if not plan.changed:
        return (f"stack {plan.stack} on {plan.database}: {NO_CHANGES} (the database matches "
                "what the stack declares)")
    counts = ", ".join(f"{plan.count(a)} to {a}" for a in Action if plan.count(a))
    hazards = Counter(h.kind for o in plan.objects for h in _unique_hazards(o))
    hazard_words = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(hazards.items()))
    return (f"stack {plan.stack} on {plan.database}: {counts or 'no object changes'}; "
            f"{len(plan.access)} access changes; hazards: {hazard_words or 'none'}")


def _hazard_line(hazard: Hazard) -> str:
    return f"{hazard.kind}: {hazard.message}"


def _unique_hazards(obj: ObjectPlan) -> list[Hazard]:
    return list(dict.fromkeys(obj.hazards))


def _access_by_table(plan: Plan) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for change in plan.access:
        found.setdefault(change.table, []).append(change.words)
    return found


def text(plan: Plan) -> str:
    lines = [summary(plan)]
    for obj in plan.objects:
        lines += ["", f"{obj.action.upper()} {obj.label}"]
        lines += [f"  {line}" for step in obj.steps if step.sql
                  for line in step.sql.splitlines()]
        lines += [f"  ! {_hazard_line(h)}" for h in _unique_hazards(obj)]
    access = _access_by_table(plan)
    if access:
        lines += ["", "access changes:"]
        for table, words in access.items():
            lines += [f"  {table}:", *(f"    {w}" for w in words)]
    return "\n".join(lines) + "\n"


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _short_hazards(obj: ObjectPlan) -> str:
    parts = []
    for hazard in _unique_hazards(obj):
        if hazard.kind == HazardKind.LOCK:
            parts.append(f"{hazard.lock} lock on {hazard.on}")
        elif hazard.kind == HazardKind.INDEX_BUILD:
            took = f", {duration(hazard.seconds)}" if hazard.seconds is not None else ""
            parts.append(f"index build ({hazard.rows} rows{took})")
        elif hazard.kind == HazardKind.ROWS_LOST:
            parts.append(f"**{hazard.rows} rows lost**")
        else:
            parts.append(hazard.kind.replace("_", " "))
    return "; ".join(dict.fromkeys(parts)) or "none"


def markdown(plan: Plan) -> str:
    """What a pull-request comment carries: the summary, a table of objects, then per
    object its SQL and hazards, then the access changes in words."""
    lines = [f"### mem0infra plan: stack `{plan.stack}`", "", summary(plan)]
    if plan.objects:
        lines += ["", "| object | action | hazards |", "|---|---|---|"]
        lines += [f"| `{_cell(o.label)}` | {o.action} | {_cell(_short_hazards(o))} |"
                  for o in plan.objects]
        for obj in plan.objects:
            lines += ["", f"#### {obj.action}: `{obj.label}`", ""]
            sql = "\n".join(step.sql for step in obj.steps if step.sql)
            if sql:
                lines += ["```sql", sql, "```"]
            lines += [f"- **{h.kind}**: {h.message}" for h in _unique_hazards(obj)]
    access = _access_by_table(plan)
    if access:
        lines += ["", "#### Access changes", ""]
        for table, words in access.items():
            lines += [f"- `{table}`", *(f"  - {w}" for w in words)]
    return "\n".join(lines) + "\n"


def _hazard_json(hazard: Hazard) -> dict[str, Any]:
    found: dict[str, Any] = {"kind": hazard.kind, "message": hazard.message}
    for key in ("on", "lock", "rows", "seconds", "method"):
        value = getattr(hazard, key)
        if value not in ("", None):
            found[key] = value
    return found


def as_json(plan: Plan) -> dict[str, Any]:
    return {
        "stack": plan.stack, "database": plan.database, "changed": plan.changed,
        "summary": summary(plan),
        "counts": {a.value: plan.count(a) for a in Action},
        "objects": [{"key": o.key, "label": o.label, "kind": o.kind, "action": o.action,
                     "steps": [{"sql": s.sql, "hazards": [_hazard_json(h) for h in s.hazards]}
                               for s in o.steps],
                     "declared": o.declared, "live": o.live} for o in plan.objects],
        "access": [{"table": c.table, "role": c.role, "command": c.command,
                    "before": c.before, "after": c.after, "words": c.words}
                   for c in plan.access],
        "load": {table: {"active_backends": load.active_backends,
                         "writes_per_second": load.writes_per_second,
                         "oldest_transaction_seconds": load.oldest_transaction_seconds}
                 for table, load in plan.loads.items()},
    }
