"""The erasure's one transaction: as the service role, `mem0_erasure.forget(kind, id)`;
a dry run makes the same call and rolls it back, so its counts are the real run's."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg

from components.backup.session import act_as_service_role
from components.connection import database_identity, open_session
from components.erasure import PersonKind
from components.errors import Mem0InfraError
from components.identifiers import qualified
from components.model import ERASURE_SCHEMA, FORGET_FUNCTION
from components.settings import Settings

APPLICATION = "mem0infra-forget"
FORGET = f"{qualified(ERASURE_SCHEMA, FORGET_FUNCTION)}(text, text)"


class ForgetError(Mem0InfraError):
    """The erasure could not run: bad arguments or settings, no database, a role that
    cannot act as the service role, a stack without the forget function, a failed query.
    Nothing was removed."""


@dataclass(frozen=True)
class ForgetRequest:
    kind: PersonKind
    subject: str  # the id, as the caller gave it
    dry_run: bool = False


@dataclass(frozen=True)
class ForgetResult:
    kind: PersonKind
    removed: dict[str, int]  # qualified table -> rows removed
    target: str  # host:port/dbname
    session_user: str  # the login role the erasure record names
    dry_run: bool
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.removed.values())


def check_profile(settings: Settings) -> None:
    if settings.client_profile != "python":
        raise ForgetError(
            f"stack {settings.stack!r} has clientProfile {settings.client_profile!r}; forget "
            "supports only clientProfile 'python' (the TypeScript SDK owns its tables: "
            "delete through it)")


def run_forget(dsn: str, settings: Settings, request: ForgetRequest) -> ForgetResult:
    check_profile(settings)
    if not request.subject.strip():
        raise ForgetError(f"--{request.kind}-id: the id is empty; give the {request.kind} "
                          "id exactly as mem0 stores it")
    started = time.monotonic()
    with open_session(dsn, APPLICATION, ForgetError) as conn:
        try:
            with conn.transaction(force_rollback=request.dry_run), conn.cursor() as cur:
                session_user = act_as_service_role(cur, settings.service_role, ForgetError)
                _check_deployed(cur, settings)
                row = cur.execute(f"SELECT {qualified(ERASURE_SCHEMA, FORGET_FUNCTION)}"
                                  "(%s, %s)", (str(request.kind), request.subject)).fetchone()
        except psycopg.Error as exc:
            raise ForgetError(f"the erasure failed and was rolled back, nothing was removed: "
                              f"{str(exc).strip()}") from exc
    assert row is not None
    removed = {str(table): int(count) for table, count in dict(row[0]).items()}
    return ForgetResult(request.kind, removed, database_identity(dsn), session_user,
                        request.dry_run, time.monotonic() - started)


def _check_deployed(cur: psycopg.Cursor[Any], settings: Settings) -> None:
    found = cur.execute("SELECT pg_catalog.to_regprocedure(%s) IS NOT NULL",
                        (FORGET,)).fetchone()
    if not found or not found[0]:
        raise ForgetError(f"this database has no {FORGET}: deploy the current version of "
                          f"stack {settings.stack!r} (`pulumi up`), which declares it")
