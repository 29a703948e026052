"""`rls explain --user ID --memory UUID`: whether a user can read, update, delete (and
insert a copy of) one row, and why.

Two independent answers per command, compared, never merged:

- what happened: the command tried for real as the role under the user's identity, each in
  a savepoint rolled back at once (SELECT ... WHERE id = $1; UPDATE ... SET payload =
  payload WHERE id = $1 RETURNING id; DELETE ... WHERE id = $1 RETURNING id; INSERT of the
  row's content under a new id);
- why: every policy PostgreSQL applies to that role and command, read from the catalog,
  its predicate evaluated as the role on the row (the deployer reads the row; the role
  evaluates `SELECT <predicate> FROM jsonb_populate_record(NULL::table, row) AS <table>`,
  so identity functions and subqueries on other tables run with the role's own rights),
  combined as PostgreSQL combines them (docs/rls-debugging.md).

When the two disagree the report says so. The transaction is READ WRITE only so the writes
can be attempted; it is rolled back like every `rls` command's.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from components.identifiers import qualified
from components.rlsdebug.identity import Identity, read_gucs
from components.rlsdebug.policies import (
    Command,
    Policy,
    TableSecurity,
    applicable_policies,
    table_security,
)
from components.rlsdebug.session import DebugSession, RlsDebugError

__all__ = ["Explanation", "Outcome", "run_explain", "stack_tables"]

ROW_MISSING = "row does not exist"


@dataclass(frozen=True)
class Predicate:
    """One policy's clause evaluated on one row."""

    policy: Policy
    clause: str  # USING | WITH CHECK
    expression: str
    value: bool | None  # None: NULL (counts as false)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"policy": self.policy.name, "kind": self.policy.kind,
                "policy_command": self.policy.command, "clause": self.clause,
                "expression": self.expression, "value": self.value, "error": self.error}

    def shown(self) -> str:
        result = (f"error: {self.error}" if self.error else
                  "NULL (false)" if self.value is None else str(self.value).lower())
        return f"{self.policy.kind} {self.policy.name}: {self.clause} {self.expression} -> {result}"


@dataclass(frozen=True)
class Layer:
    """One set of policies a command must pass: PostgreSQL ORs the permissive ones and ANDs
    the restrictive ones."""

    what: str  # e.g. "SELECT USING on the existing row"
    predicates: list[Predicate]
    silent: bool  # True: a failing row is skipped (0 rows); False: an error is raised

    @property
    def permissive(self) -> list[Predicate]:
        return [p for p in self.predicates if p.policy.permissive]

    def passes(self) -> bool:
        return any(p.value for p in self.permissive) and all(
            p.value for p in self.predicates if not p.policy.permissive)

    def reason(self) -> str:
        failed = [p for p in self.predicates if not p.policy.permissive and not p.value]
        if failed:
            return f"{self.what}: restrictive policy {failed[0].policy.name} is not true"
        if not self.permissive:
            return f"{self.what}: no permissive policy applies (denied by default)"
        if not any(p.value for p in self.permissive):
            names = ", ".join(p.policy.name for p in self.permissive)
            return f"{self.what}: no permissive policy is true ({names})"
        first = next(p for p in self.permissive if p.value)
        return f"{self.what}: permissive policy {first.policy.name} let it through"


@dataclass
class Outcome:
    """One command: what happened when tried, and what the policies say."""

    command: Command
    tried: str  # the statement attempted
    actual: bool | None  # None: the attempt could not decide (another error)
    actual_detail: str
    expected: bool
    reason: str
    layers: list[Layer] = field(default_factory=list)

    @property
    def agrees(self) -> bool | None:
        return None if self.actual is None else self.actual == self.expected

    def as_json(self) -> dict[str, Any]:
        return {"command": self.command, "tried": self.tried, "allowed": self.actual,
                "what_happened": self.actual_detail, "explanation_allows": self.expected,
                "reason": self.reason, "agrees": self.agrees,
                "layers": [{"what": layer.what, "passes": layer.passes(),
                            "on_failure": "row skipped" if layer.silent else "error",
                            "predicates": [p.as_json() for p in layer.predicates]}
                           for layer in self.layers]}


@dataclass(frozen=True)
class Explanation:
    table: str
    memory: str
    role: str
    identity: dict[str, str | None]
    security: TableSecurity
    outcomes: list[Outcome]
    note: str | None = None

    @property
    def select_allowed(self) -> bool | None:
        return self.outcomes[0].actual if self.outcomes else None

    def as_json(self) -> dict[str, Any]:
        return {"table": self.table, "memory": self.memory, "role": self.role,
                "identity": self.identity, "security": self.security.as_json(),
                "outcomes": [o.as_json() for o in self.outcomes], "note": self.note,
                "disagreements": [o.command for o in self.outcomes if o.agrees is False]}

    def text(self) -> str:
        who = ", ".join(f"{k}={v}" for k, v in self.identity.items() if v is not None)
        lines = [f"row {self.memory} of {self.table}, as {self.role} "
                 f"({who or 'no identity set'}); every attempt rolled back"]
        if self.note:
            lines.append(f"note: {self.note}")
        for o in self.outcomes:
            verdict = ("could not tell" if o.actual is None else
                       "ALLOWED" if o.actual else "REFUSED")
            lines.append(f"{o.command:<6}  {verdict}: {o.actual_detail}")
            lines.append(f"        why: {o.reason}")
            if o.agrees is False:
                lines.append("        DISAGREEMENT: the policies evaluated on the row say "
                             + ("allowed" if o.expected else "refused")
                             + ", the attempt says otherwise; the attempt is the truth: "
                               "something the predicates did not see decided (a trigger "
                               "changing the new row, a volatile function)")
            for layer in _decisive(o):
                lines.append(f"        {layer.what}: {'passes' if layer.passes() else 'fails'}")
                lines += [f"          {p.shown()}" for p in layer.predicates] or [
                    f"          no policy for {self.role}: denied by default"]
        return "\n".join(lines) + "\n"


def _decisive(outcome: Outcome) -> list[Layer]:
    """The layers a text report shows: up to the first that fails (the ones after it did
    not decide; --json has them all), none when no grant let the policies be consulted."""
    if outcome.reason.startswith("no privilege"):
        return []
    shown = []
    for layer in outcome.layers:
        shown.append(layer)
        if not layer.passes():
            break
    return shown


def _flat(expression: str) -> str:
    return " ".join(expression.split())


def stack_tables(session: DebugSession, table_names: list[str], schema: str = "public"
                 ) -> list[str]:
    """The stack's tables (from the model) that exist here with a uuid `id` column: the
    rows --memory can name."""
    return [name for name in table_names if session.value(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute"
        " WHERE attrelid = pg_catalog.to_regclass(%s) AND attname = 'id'"
        " AND atttypid = 'pg_catalog.uuid'::pg_catalog.regtype AND NOT attisdropped)",
        (qualified(schema, name),))]


def _columns(session: DebugSession, table: str) -> list[str]:
    """Columns an INSERT may name: not generated, not an identity."""
    return [r[0] for r in session.rows(
        "SELECT attname::text FROM pg_catalog.pg_attribute WHERE attrelid ="
        " pg_catalog.to_regclass(%s) AND attnum > 0 AND NOT attisdropped"
        " AND attgenerated = '' AND attidentity = '' ORDER BY attnum", (table,))]


def _attempt(session: DebugSession, statement: sql.Composed, params: tuple[Any, ...],
             verb: str) -> tuple[bool | None, str]:
    """Run as the role in a savepoint rolled back at once: allowed?, and what happened."""
    try:
        with session.undone():
            cursor = session.conn.execute(statement, params)
            count = cursor.rowcount
    except psycopg.errors.InsufficientPrivilege as exc:
        message = " ".join(str(exc).split())
        return False, message
    except psycopg.errors.IntegrityError as exc:
        # PostgreSQL checks a new row against row-level security before constraints and
        # unique indexes: a constraint that refused it came after the policies let it in
        # (an INSERT copy of a row with a unique key other than id collides, say).
        return True, ("row-level security let it through, then a constraint refused it "
                      f"({exc.sqlstate}): {' '.join(str(exc).split())}")
    except psycopg.Error as exc:
        return None, f"failed for another reason ({exc.sqlstate}): {' '.join(str(exc).split())}"
    if count > 0:
        return True, f"{count} row(s) {verb}"
    return False, "0 rows: the row was filtered out, silently"


def _evaluate(session: DebugSession, table: str, alias: str, row: str, policy: Policy,
              clause: str, expression: str) -> Predicate:
    query = sql.SQL("SELECT ({}) FROM pg_catalog.jsonb_populate_record(NULL::{}, %s::jsonb)"
                    " AS {}").format(sql.SQL(expression), sql.SQL(table), sql.Identifier(alias))
    try:
        with session.savepoint("rls_predicate"):
            value = session.value(query, (row,))
    except psycopg.Error as exc:
        return Predicate(policy, clause, _flat(expression), None, " ".join(str(exc).split()))
    return Predicate(policy, clause, _flat(expression), None if value is None else bool(value))


def _layer(session: DebugSession, table: str, alias: str, row: str, policies: list[Policy],
           what: str, check: bool, silent: bool) -> Layer:
    predicates = []
    for policy in policies:
        # WITH CHECK falls back to USING where a policy has none (PostgreSQL's rule).
        expression = (policy.check or policy.using) if check else policy.using
        if expression is None:
            continue
        predicates.append(_evaluate(session, table, alias, row, policy,
                                    "WITH CHECK" if check and policy.check else "USING",
                                    expression))
    return Layer(what, predicates, silent)


def _layers(session: DebugSession, table: str, alias: str, applicable: dict[Command, list[Policy]],
            old: str, new: str, command: Command) -> list[Layer]:
    """The policy sets PostgreSQL applies, in order: a WHERE or RETURNING that reads columns
    brings in the SELECT policies (on the existing row; on the new row for UPDATE)."""
    def policies(c: Command) -> list[Policy]:
        return applicable[c]

    select = "SELECT USING on the existing row"
    if command == Command.SELECT:
        return [_layer(session, table, alias, old, policies(Command.SELECT), select,
                       False, True)]
    if command == Command.DELETE:
        return [_layer(session, table, alias, old, policies(Command.SELECT), select,
                       False, True),
                _layer(session, table, alias, old, policies(Command.DELETE),
                       "DELETE USING on the existing row", False, True)]
    if command == Command.UPDATE:
        return [_layer(session, table, alias, old, policies(Command.SELECT), select,
                       False, True),
                _layer(session, table, alias, old, policies(Command.UPDATE),
                       "UPDATE USING on the existing row", False, True),
                _layer(session, table, alias, old, policies(Command.UPDATE),
                       "UPDATE WITH CHECK on the new row", True, False),
                _layer(session, table, alias, old, policies(Command.SELECT),
                       "SELECT USING on the new row (RETURNING)", False, False)]
    return [_layer(session, table, alias, new, policies(Command.INSERT),
                   "INSERT WITH CHECK on the new row", True, False)]


def _expected(security: TableSecurity, privilege: bool, layers: list[Layer], role: str,
              command: Command) -> tuple[bool, str]:
    if not privilege:
        return False, f"no privilege: {role} has no {command} grant on {security.table}"
    if security.exempt:
        return True, f"no policy applies: {security.exempt}"
    for layer in layers:
        if not layer.passes():
            how = "the row is skipped" if layer.silent else "an error is raised"
            return False, f"{layer.reason()} ({how})"
    return True, "; ".join(layer.reason() for layer in layers)


def _statements(table: str, columns: list[str], has_payload: bool
                ) -> dict[Command, sql.Composed]:
    target = sql.SQL(table)  # validated and quoted by the caller
    kept = sql.Identifier("payload" if has_payload else "id")
    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    return {
        Command.SELECT: sql.SQL("SELECT id FROM {} WHERE id = %s").format(target),
        Command.UPDATE: sql.SQL("UPDATE {} SET {} = {} WHERE id = %s RETURNING id").format(
            target, kept, kept),
        Command.DELETE: sql.SQL("DELETE FROM {} WHERE id = %s RETURNING id").format(target),
        Command.INSERT: sql.SQL(
            "INSERT INTO {} ({}) SELECT {} FROM pg_catalog.jsonb_populate_record("
            "NULL::{}, %s::jsonb)").format(target, names, names, target),
    }


def run_explain(session: DebugSession, role: str, identity: Identity, memory: str,
                table_name: str, schema: str = "public") -> Explanation:
    table = qualified(schema, table_name)
    if session.value("SELECT pg_catalog.to_regclass(%s)", (table,)) is None:
        raise RlsDebugError(f"--table {table_name}: no table {table} in this database")
    found = session.rows(f"SELECT to_jsonb(t.*)::text FROM {table} t WHERE t.id = %s",
                         (memory,))
    identity.apply(session)
    security = table_security(session, table, role)
    gucs = read_gucs(session)
    if not found:
        detail = ROW_MISSING if session.deployer.sees_every_row else (
            f"{ROW_MISSING} for the deployer {session.deployer.session_user}, which "
            "row-level security binds (connect as a role that bypasses it)")
        return Explanation(table, memory, role, gucs, security, [
            Outcome(c, "nothing tried", False, detail, False, detail) for c in Command],
            note=detail)
    old = found[0][0]
    record = json.loads(old)
    new = json.dumps({**record, "id": str(uuid.uuid4())})
    statements = _statements(table, _columns(session, table), "payload" in record)
    privileges = {c: bool(session.value("SELECT pg_catalog.has_table_privilege(%s, %s, %s)",
                                        (role, table, str(c)))) for c in Command}
    applicable = {c: applicable_policies(session, table, role, c) for c in Command}
    session.act_as(role)
    outcomes = []
    for command in Command:
        params = (new,) if command == Command.INSERT else (memory,)
        actual, detail = _attempt(session, statements[command], params,
                                  "returned" if command == Command.SELECT else "affected")
        layers = _layers(session, table, table_name, applicable, old, new, command)
        expected, reason = _expected(security, privileges[command], layers, role, command)
        tried = statements[command].as_string(session.conn).replace("%s", "$1")
        outcomes.append(Outcome(command, tried, actual, detail, expected, reason, layers))
    session.back_to_deployer()
    return Explanation(table, memory, role, gucs, security, outcomes)
