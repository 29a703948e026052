"""What `connections` prints: the same facts as text for a terminal, one JSON object, or
Markdown. No password is ever printed (the pooler's URL is redacted) and query text is
cut to activity.QUERY_CHARS."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from components.connections.activity import Session
from components.connections.budget import Basis, Budget
from components.connections.pooler import POOL_COLUMNS, STATS_COLUMNS, PoolerView
from components.connections.roles import LABELS
from components.connections.snapshot import Snapshot

Cells = Sequence[object]


def _table(header: Cells, rows: Sequence[Cells], indent: str = "  ") -> list[str]:
    text = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in text) for i in range(len(header))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in text]


def _markdown_table(header: Cells, rows: Sequence[Cells]) -> list[str]:
    def line(cells: Cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return [line(header), line(["---"] * len(header)), *(line(r) for r in rows)]


def _is(snapshot: Snapshot, role: str) -> str:
    kind = snapshot.kind(role)
    return LABELS[kind] if kind else ""


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


def _group_rows(snapshot: Snapshot) -> list[Cells]:
    return [(g.count, g.role, _is(snapshot, g.role), g.application or "-", g.state, g.client,
             g.database) for g in snapshot.groups]


GROUP_HEADER = ("count", "role", "is", "application", "state", "client", "database")
SESSION_HEADER = ("pid", "role", "is", "application", "client", "idle", "transaction",
                  "statement", "query")


def _session_rows(snapshot: Snapshot, sessions: list[Session]) -> list[Cells]:
    return [(s.pid, s.role, _is(snapshot, s.role), s.application or "-", s.client,
             _seconds(s.state_seconds) if s.state != "active" else "-",
             _seconds(s.xact_seconds), _seconds(s.query_seconds), s.query or "-")
            for s in sessions]


def _slots_line(snapshot: Snapshot) -> str:
    s = snapshot.slots
    reserved = ("reserved_connections absent (before PostgreSQL 16)" if s.reserved is None
                else f"{s.reserved} reserved_connections")
    return (f"slots: max_connections {s.max_connections} - superuser_reserved_connections "
            f"{s.superuser_reserved} - {reserved} = {s.for_non_superusers} for "
            f"non-superusers; {s.in_use} in use (this session included), "
            f"{s.for_non_superusers - s.in_use} left")


def _limits_line(snapshot: Snapshot) -> str | None:
    counts: dict[str, int] = {}
    for g in snapshot.groups:
        counts[g.role] = counts.get(g.role, 0) + g.count
    limits = snapshot.slots.role_limits
    if not limits:
        return None
    return "role connection limits: " + ", ".join(
        f"{role} {limit} ({counts.get(role, 0)} connected)" for role, limit in limits.items())


def _budget_lines(budget: Budget) -> list[str]:
    shape = budget.shape
    per = (f"2 x maxconn {shape.maxconn}" + (f" + minconn {shape.minconn}" if shape.telemetry
                                             else "") + " = " + str(shape.per_process))
    lines = [f"mem0 needs: {shape.processes} process(es) x ({per}: main store, entity "
             f"store{', telemetry store' if shape.telemetry else ''}) = {shape.clients} "
             "connections"]
    if budget.basis == Basis.POOLER:
        lines.append(f"  behind a transaction-mode pooler: the server holds its pool of "
                     f"{budget.need} for the app's database and user; the pooler takes "
                     f"mem0's {shape.clients} clients (max_client_conn "
                     f"{budget.pooler_clients})")
    else:
        lines.append(f"  direct (or a session-mode pooler): all {budget.need} reach the "
                     "server")
    limit = f"; the app role's connection limit {budget.role_limit}" \
        if budget.role_limit is not None else ""
    lines.append(f"  server: {budget.slots} non-superuser slots - {budget.others} held by "
                 f"other roles = {budget.available} for the app (it holds {budget.app_now} "
                 f"now){limit}")
    lines.append(f"verdict: {budget.verdict}: {budget.need} needed of {budget.limit} "
                 f"available (tight above 80%)")
    return lines


def _pooler_lines(snapshot: Snapshot) -> list[str]:
    pooler = snapshot.pooler
    if pooler is None:
        return ["pooler: none (the stack sets no poolerUrl)"]
    if not isinstance(pooler, PoolerView):
        return [f"pooler view unavailable: {pooler.reason} ({pooler.url})"]
    lines = [f"pooler {pooler.url}: {pooler.pool_mode or 'unknown'} mode, pool size "
             f"{pooler.pool_size}, max_client_conn {pooler.max_client_conn}", "  SHOW POOLS"]
    lines += _table(POOL_COLUMNS, [[p.get(c, "") for c in POOL_COLUMNS] for p in pooler.pools],
                    "    ")
    lines.append("  SHOW STATS")
    lines += _table(STATS_COLUMNS, [[s.get(c, "") for c in STATS_COLUMNS]
                                    for s in pooler.stats], "    ")
    return lines


def connections_text(snapshot: Snapshot) -> str:
    o = snapshot.options
    lines = [f"connections on {snapshot.server} (PostgreSQL {snapshot.version}), stack "
             f"{snapshot.stack}, as {snapshot.session_user}, at "
             f"{snapshot.taken_at:%Y-%m-%d %H:%M:%S %Z}", _slots_line(snapshot)]
    if (limits := _limits_line(snapshot)) is not None:
        lines.append(limits)
    lines += ["", "client connections by role, application, state and client (this "
              "session left out)"]
    lines += _table(GROUP_HEADER, _group_rows(snapshot)) if snapshot.groups else ["  none"]
    if any(g.state == "(hidden)" for g in snapshot.groups):
        lines.append("  (hidden): rows of other roles; connect as a superuser or a member "
                     "of pg_read_all_stats to see them")
    for title, sessions in (
            (f"idle in transaction (fails over {o.idle_limit:g} s)",
             snapshot.idle_in_transaction),
            (f"statements running over {o.long_seconds:g} s", snapshot.long_running)):
        lines += ["", f"{title}: {len(sessions)}"]
        if sessions:
            lines += _table(SESSION_HEADER, _session_rows(snapshot, sessions))
    lines += ["", *_pooler_lines(snapshot), "", *_budget_lines(snapshot.budget)]
    lines += [f"problem: {p}" for p in snapshot.problems]
    return "\n".join(lines) + "\n"


def connections_document(snapshot: Snapshot) -> dict[str, Any]:
    """The report as JSON-ready data; the same facts as the text."""
    pooler: dict[str, Any] | None = None
    if isinstance(snapshot.pooler, PoolerView):
        pooler = {"available": True, **asdict(snapshot.pooler)}
    elif snapshot.pooler is not None:
        pooler = {"available": False, **asdict(snapshot.pooler)}
    budget = snapshot.budget
    return {
        "taken_at": snapshot.taken_at.isoformat(), "server": snapshot.server,
        "version": snapshot.version, "session_user": snapshot.session_user,
        "stack": snapshot.stack, "roles": {r: str(k) for r, k in snapshot.roles.items()},
        "slots": {**asdict(snapshot.slots),
                  "for_non_superusers": snapshot.slots.for_non_superusers},
        "groups": [{**asdict(g), "is": str(snapshot.kind(g.role) or "")}
                   for g in snapshot.groups],
        "idle_in_transaction": [asdict(s) for s in snapshot.idle_in_transaction],
        "long_running": [asdict(s) for s in snapshot.long_running],
        "long_seconds": snapshot.options.long_seconds,
        "idle_limit": snapshot.options.idle_limit,
        "pooler": pooler,
        "budget": {**asdict(budget), "basis": str(budget.basis),
                   "verdict": str(budget.verdict), "limit": budget.limit,
                   "per_process": budget.shape.per_process,
                   "clients": budget.shape.clients},
        "problems": snapshot.problems,
    }


def connections_json(snapshot: Snapshot) -> str:
    """One line: with --watch, one object per line."""
    return json.dumps(connections_document(snapshot), sort_keys=True) + "\n"


def connections_markdown(snapshot: Snapshot) -> str:
    o = snapshot.options
    lines = [f"# Connections on {snapshot.server}", "",
             f"PostgreSQL {snapshot.version}, stack `{snapshot.stack}`, read as "
             f"`{snapshot.session_user}` at {snapshot.taken_at:%Y-%m-%d %H:%M:%S %Z}.", "",
             _slots_line(snapshot) + "."]
    if (limits := _limits_line(snapshot)) is not None:
        lines += ["", limits + "."]
    lines += ["", "## Client connections", ""]
    lines += _markdown_table(GROUP_HEADER, _group_rows(snapshot)) if snapshot.groups \
        else ["None besides this session."]
    for title, sessions in (
            (f"Idle in transaction (fails over {o.idle_limit:g} s)",
             snapshot.idle_in_transaction),
            (f"Statements running over {o.long_seconds:g} s", snapshot.long_running)):
        lines += ["", f"## {title}", ""]
        lines += _markdown_table(SESSION_HEADER, _session_rows(snapshot, sessions)) \
            if sessions else ["None."]
    lines += ["", "## Pooler", ""]
    pooler = snapshot.pooler
    if isinstance(pooler, PoolerView):
        lines += [_pooler_lines(snapshot)[0], "", "### SHOW POOLS", ""]
        columns = list(pooler.pools[0]) if pooler.pools else list(POOL_COLUMNS)
        lines += _markdown_table(columns, [[p.get(c, "") for c in columns]
                                           for p in pooler.pools])
        lines += ["", "### SHOW STATS", ""]
        columns = list(pooler.stats[0]) if pooler.stats else list(STATS_COLUMNS)
        lines += _markdown_table(columns, [[s.get(c, "") for c in columns]
                                           for s in pooler.stats])
    else:
        lines += _pooler_lines(snapshot)
    lines += ["", "## mem0's budget", "", *(f"- {line.strip()}"
                                            for line in _budget_lines(snapshot.budget))]
    if snapshot.problems:
        lines += ["", "## Problems", "", *(f"- {p}" for p in snapshot.problems)]
    return "\n".join(lines) + "\n"
