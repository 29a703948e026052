"""Who a debug session acts as: the role, the identity settings, the identity functions.

The identity settings are the ones the stack's identity functions read (sql/*_function.sql):
mem0.user_id, mem0.run_id, mem0.agent_id and PostgREST's request.jwt.claims. They are set
LOCAL, so they end with the transaction. Which identity functions a stack has depends on
its settings (sessionScope, tenancy, agent spaces): `identity_functions` asks the database
which of the names the model uses exist, and only those are called.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from components.access import (
    ADMIN_ORG_IDS_FUNCTION,
    AGENT_ID_FUNCTION,
    ORG_IDS_FUNCTION,
    RUN_ID_FUNCTION,
    USER_ID_FUNCTION,
)
from components.identifiers import identifier_problem, qualified
from components.rlsdebug.session import DebugSession, RlsDebugError
from components.settings import SUPABASE_END_USER_ROLES, Settings

__all__ = ["GUCS", "IDENTITY_FUNCTIONS", "Identity", "call_identity_functions",
           "identity_functions", "memory_id", "read_gucs", "stack_roles", "validate_role"]

# The settings the identity functions read, in the order reports show them.
USER_GUC, RUN_GUC, AGENT_GUC, CLAIMS_GUC = ("mem0.user_id", "mem0.run_id", "mem0.agent_id",
                                            "request.jwt.claims")
GUCS = (USER_GUC, RUN_GUC, AGENT_GUC, CLAIMS_GUC)
# Every identity function a stack may declare; the model declares each only where its
# option is on, so they are looked up in the database before they are called.
IDENTITY_FUNCTIONS = (USER_ID_FUNCTION, RUN_ID_FUNCTION, ORG_IDS_FUNCTION,
                      ADMIN_ORG_IDS_FUNCTION, AGENT_ID_FUNCTION)


@dataclass(frozen=True)
class Identity:
    """The identity settings a session sets (None: left as the connection has them)."""

    user: str | None = None
    run: str | None = None
    agent: str | None = None
    claims: str | None = None  # a JSON object, as PostgREST sets request.jwt.claims

    def settings(self) -> dict[str, str]:
        values = {USER_GUC: self.user, RUN_GUC: self.run, AGENT_GUC: self.agent,
                  CLAIMS_GUC: self.claims}
        return {name: value for name, value in values.items() if value is not None}

    def apply(self, session: DebugSession) -> None:
        """set_config(..., true): LOCAL to the transaction, values bound."""
        for name, value in self.settings().items():
            session.conn.execute("SELECT pg_catalog.set_config(%s, %s, true)", (name, value))

    @classmethod
    def from_arguments(cls, user: str | None, run: str | None, agent: str | None = None,
                       claims: str | None = None) -> Identity:
        for flag, value in (("--user", user), ("--run", run), ("--agent", agent)):
            if value is not None and not value.strip():
                raise RlsDebugError(f"{flag}: must not be empty (omit it to leave "
                                    "the setting unset)")
        if claims is not None:
            try:
                parsed = json.loads(claims)
            except json.JSONDecodeError as exc:
                raise RlsDebugError(f"--claims: not JSON ({exc.msg}); allowed: a JSON "
                                    'object such as {"sub": "alice", "role": '
                                    '"authenticated"}') from exc
            if not isinstance(parsed, dict):
                raise RlsDebugError("--claims: must be a JSON object, such as "
                                    '{"sub": "alice"}')
            claims = json.dumps(parsed, separators=(",", ":"))
        return cls(user, run, agent, claims)


def memory_id(text: str, flag: str = "--memory") -> str:
    """A row id as the tables store it: a uuid, else an error naming the flag."""
    try:
        return str(uuid.UUID(text))
    except ValueError as exc:
        raise RlsDebugError(f"{flag} {text!r}: not a uuid; allowed: a memory id such as "
                            "0e000000-0000-4000-8000-000000000001") from exc


def stack_roles(settings: Settings) -> tuple[str, ...]:
    """The roles a session may act as: the app role first (the default), then the stack's
    other roles; on supabase, Supabase's end-user roles."""
    roles = [settings.app_role]
    if settings.target == "supabase":
        roles += [*SUPABASE_END_USER_ROLES, settings.service_role]
    else:
        assert settings.readonly_role is not None
        roles += [settings.readonly_role, settings.service_role, settings.owner_role]
    return tuple(dict.fromkeys(roles))


def validate_role(role: str | None, settings: Settings) -> str:
    """--role, one of the stack's roles (default: the app role)."""
    allowed = stack_roles(settings)
    if role is None:
        return allowed[0]
    problem = identifier_problem(role)
    if problem is not None or role not in allowed:
        raise RlsDebugError(f"--role {role!r}: not a role of stack {settings.stack!r}; "
                            f"allowed: {', '.join(allowed)}")
    return role


def identity_functions(session: DebugSession, schema: str = "public") -> list[str]:
    """The identity functions this database has, qualified, in IDENTITY_FUNCTIONS order."""
    present = []
    for name in IDENTITY_FUNCTIONS:
        signature = f"{qualified(schema, name)}()"
        if session.value("SELECT pg_catalog.to_regprocedure(%s) IS NOT NULL",
                         (signature,)):
            present.append(qualified(schema, name))
    return present


def call_identity_functions(session: DebugSession, functions: list[str]
                            ) -> dict[str, Any]:
    """Each function's value as the current role sees it; an error is reported as its
    text (say, no EXECUTE privilege), never raised."""
    values: dict[str, Any] = {}
    for function in functions:
        try:
            with session.savepoint("rls_identity"):
                # `function` is a validated, quoted name from identity_functions.
                values[function] = session.value(f"SELECT {function}()")
        except psycopg.Error as exc:
            values[function] = f"error: {str(exc).strip()}"
    return values


def read_gucs(session: DebugSession) -> dict[str, str | None]:
    """The identity settings as the connection has them now (None: unset or empty)."""
    return {name: session.value("SELECT NULLIF(pg_catalog.current_setting(%s, true), '')",
                                (name,)) for name in GUCS}
