"""`rls as-user ID -- "SQL"`: one statement run as a role under a user's identity.

The statement runs verbatim, alone (the extended protocol takes one statement), in the READ
ONLY transaction every `rls` command rolls back, as the role (SET LOCAL ROLE) with the
identity settings LOCAL. Afterwards the session must still be that transaction, that role
and that identity: a statement that ends the transaction or changes the role is reported as
refused, never its rows. Then, for each table the statement's plan reads: the policies that
applied to the role for the statement's command, and the rows the role sees there against
the rows the deployer sees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from components.identifiers import qualified, quote_ident
from components.rlsdebug.identity import Identity, read_gucs
from components.rlsdebug.policies import (
    Command,
    Policy,
    TableSecurity,
    applicable_policies,
    table_security,
)
from components.rlsdebug.session import DebugSession, RlsDebugError, StatementRefused

__all__ = ["AsUser", "TableReport", "run_as_user"]

CELL_WIDTH = 60  # a vector column would fill the screen


@dataclass(frozen=True)
class TableReport:
    security: TableSecurity
    command: Command
    policies: list[Policy]
    visible: int | None  # rows the role sees (None: it may not count them)
    total: int | None  # rows the deployer sees
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {**self.security.as_json(), "command": self.command,
                "policies": [p.as_json() for p in self.policies],
                "rows_visible": self.visible, "rows_total": self.total, "note": self.note}


@dataclass(frozen=True)
class AsUser:
    role: str
    identity: dict[str, str | None]
    command: str  # the statement's command tag
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool
    tables: list[TableReport]
    deployer: str
    deployer_sees_all: bool

    def as_json(self) -> dict[str, Any]:
        return {"role": self.role, "identity": self.identity,
                "command": self.command.split(" ")[0], "status": self.command,
                "columns": self.columns, "rows": [list(r) for r in self.rows],
                "truncated": self.truncated, "tables": [t.as_json() for t in self.tables],
                "deployer": self.deployer, "deployer_sees_every_row": self.deployer_sees_all}

    def text(self) -> str:
        who = ", ".join(f"{k}={v}" for k, v in self.identity.items() if v is not None)
        lines = [f"as {self.role} ({who or 'no identity set'}), read only, rolled back:",
                 f"{self.command.split(' ')[0]}: {len(self.rows)} row(s)"
                 + (" shown (more were cut by --limit)" if self.truncated else "")]
        if self.columns:
            lines.append("  " + " | ".join(self.columns))
            lines += ["  " + " | ".join(_cell(v) for v in row) for row in self.rows]
        total_word = ("total" if self.deployer_sees_all else
                      f"visible to the deployer {self.deployer}, which row-level security "
                      "binds")
        for t in self.tables:
            counts = (f"{t.visible} of {t.total} rows visible ({total_word})"
                      if t.visible is not None else f"rows not countable: {t.note}")
            lines.append(f"table {t.security.table}: {counts}")
            if t.security.exempt:
                lines.append(f"  no policy applies: {t.security.exempt}")
                continue
            if not t.policies:
                lines.append(f"  no {t.command} policy for {self.role}: no row is visible "
                             "(row-level security denies by default)")
            for p in t.policies:
                lines.append(f"  {p.kind} {p.name} ({p.command} to {', '.join(p.roles)})")
                if p.using is not None:
                    lines.append(f"    USING {p.using}")
                if p.check is not None and t.command in (Command.INSERT, Command.UPDATE):
                    lines.append(f"    WITH CHECK {p.check}")
        return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= CELL_WIDTH else text[:CELL_WIDTH - 3] + "..."


def _plan_tables(plan: Any, found: dict[str, None]) -> None:
    """Every relation a plan (EXPLAIN VERBOSE, FORMAT JSON) scans or modifies."""
    if isinstance(plan, dict):
        if "Relation Name" in plan and "Schema" in plan:
            found[qualified(plan["Schema"], plan["Relation Name"])] = None
        for value in plan.values():
            _plan_tables(value, found)
    elif isinstance(plan, list):
        for item in plan:
            _plan_tables(item, found)


_PLAN_COMMANDS = {"Insert": Command.INSERT, "Update": Command.UPDATE,
                  "Delete": Command.DELETE}


def _statement_command(plan: Any) -> Command:
    top = plan[0]["Plan"] if isinstance(plan, list) and plan else {}
    return _PLAN_COMMANDS.get(str(top.get("Operation", "")), Command.SELECT)


def _count(session: DebugSession, table: str) -> int:
    # `table` is a catalog name through identifiers.qualified: quoted where needed.
    return int(session.value(f"SELECT count(*) FROM {table}"))


def _run(session: DebugSession, statement: str, limit: int
         ) -> tuple[str, list[str], list[tuple[Any, ...]], bool]:
    conn = session.conn
    conn.execute("SAVEPOINT rls_statement")
    with conn.cursor() as cursor:
        try:
            # prepare=True: the extended protocol, which takes exactly one statement.
            cursor.execute(statement.encode(), prepare=True)
            columns = [c.name for c in cursor.description or []]
            rows = cursor.fetchmany(limit + 1) if cursor.description else []
        except psycopg.Error as exc:
            if conn.info.transaction_status == TransactionStatus.INERROR:
                conn.execute("ROLLBACK TO SAVEPOINT rls_statement")
            raise StatementRefused(f"the statement was refused ({exc.sqlstate or '?'}): "
                                   f"{str(exc).strip()}") from exc
        tag = cursor.statusmessage or ""
    if conn.info.transaction_status != TransactionStatus.INTRANS:
        raise StatementRefused(f"the statement ended the transaction ({tag}): as-user takes "
                               "one query, run inside its own transaction")
    conn.execute("RELEASE SAVEPOINT rls_statement")
    return tag, columns, rows[:limit], len(rows) > limit


def _search_path(session: DebugSession, schemas: tuple[str, ...]) -> None:
    path = ", ".join(quote_ident(schema) for schema in schemas)
    session.conn.execute("SELECT pg_catalog.set_config('search_path', %s, true)", (path,))


def run_as_user(session: DebugSession, role: str, identity: Identity, statement: str,
                limit: int, schemas: tuple[str, ...] = ("public",)) -> AsUser:
    """`schemas`: the search_path the statement runs with (mem0's connections find the
    tables in public); the rest of the session keeps an empty one."""
    if not statement.strip():
        raise RlsDebugError('the statement after `--` is empty; usage: rls as-user ID -- '
                            '"SELECT ..."')
    identity.apply(session)
    session.act_as(role)
    expected = read_gucs(session)
    _search_path(session, schemas)
    tag, columns, rows, truncated = _run(session, statement, limit)
    if session.value("SELECT current_user::text") != role or read_gucs(session) != expected:
        raise StatementRefused("the statement changed the session (the role or the identity "
                               "settings): its rows are not shown; as-user takes one query")
    try:
        with session.savepoint("rls_plan"):
            plan = session.value(b"EXPLAIN (VERBOSE, FORMAT JSON) " + statement.encode())
    except psycopg.Error:
        plan = []  # a statement EXPLAIN does not take (SHOW, VALUES ...): no tables read
    _search_path(session, ())
    found: dict[str, None] = {}
    _plan_tables(plan, found)
    command = _statement_command(plan)
    visible: dict[str, int | None] = {}
    notes: dict[str, str] = {}
    for table in found:
        try:
            with session.savepoint("rls_count"):
                visible[table] = _count(session, table)
        except psycopg.Error as exc:
            visible[table], notes[table] = None, str(exc).strip()
    session.back_to_deployer()
    reports = []
    for table in found:
        total = _count(session, table) if visible[table] is not None else None
        reports.append(TableReport(table_security(session, table, role), command,
                                   applicable_policies(session, table, role, command),
                                   visible[table], total, notes.get(table)))
    return AsUser(role, expected, tag, columns, rows, truncated, reports,
                  session.deployer.session_user, session.deployer.sees_every_row)
