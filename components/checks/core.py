"""Named checks with a status, a detail and a fix hint, run in order with prerequisites.

A check whose prerequisite did not pass is skipped, not run: its failure would only repeat
the cause (with the extension gone every table differs; with a policy altered the
enforcement test proves nothing). So one fault fails exactly one check, and the report
names the checks it held back. Each check runs in its own transaction, rolled back, with a
statement timeout: checks read, and whatever they write to prove a behaviour is undone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from components.model import ObjectSpec
from components.settings import Settings

PASS, FAIL, SKIP = "pass", "fail", "skip"
STATEMENT_TIMEOUT = "60s"  # per statement of a check: a lock held elsewhere must not hang it
EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2


class CheckRunError(RuntimeError):
    """The checks could not run at all (exit code 2): no connection, the session lost."""


@dataclass(frozen=True)
class Outcome:
    status: str  # PASS | FAIL | SKIP
    detail: str  # what was found, in a line or a few
    hint: str = ""  # for a failure: what to do about it
    blocks: bool = True  # a SKIP that holds back the checks after it (False: not applicable)


def passed(detail: str) -> Outcome:
    return Outcome(PASS, detail)


def failed(detail: str, hint: str) -> Outcome:
    return Outcome(FAIL, detail, hint)


def not_applicable(detail: str) -> Outcome:
    """Skipped because the stack does not use what the check checks (never a problem)."""
    return Outcome(SKIP, detail, blocks=False)


@dataclass(frozen=True)
class Context:
    """What every check reads: an open session and what the stack declares."""

    conn: psycopg.Connection[Any]
    settings: Settings
    specs: tuple[ObjectSpec, ...]
    dsn: str  # for checks that open sessions of their own (the pooler)

    @property
    def server_version(self) -> int:
        return self.conn.info.server_version

    def rows(self, query: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(query, params).fetchall()

    def value(self, query: str, params: Sequence[object] = ()) -> Any:
        row = self.conn.execute(query, params).fetchone()
        return None if row is None else row[0]

    def of_kind(self, *kinds: str) -> list[ObjectSpec]:
        return [s for s in self.specs if s.kind in kinds]


@dataclass(frozen=True)
class Check:
    name: str
    title: str  # what it verifies, one line
    run: Callable[[Context], Outcome]
    after: tuple[str, ...] = ()  # checks that must pass first


@dataclass(frozen=True)
class Result:
    name: str
    title: str
    status: str
    detail: str
    hint: str
    seconds: float
    blocks: bool = field(default=True, repr=False)


@dataclass(frozen=True)
class Report:
    phase: str  # preflight | validate
    stack: str
    target: str
    database: str  # host:port/dbname, no credentials
    results: tuple[Result, ...]
    seconds: float

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.status == FAIL]

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> dict[str, Any]:
        """The short form: stack outputs and the head of the JSON document."""
        return {
            "phase": self.phase, "passed": self.passed, "checks": len(self.results),
            "failed": [r.name for r in self.failures],
            "skipped": [r.name for r in self.results if r.status == SKIP],
            "seconds": round(self.seconds, 3)}

    def as_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "target": self.target, "database": self.database,
                **self.summary(),
                "results": [{k: v for k, v in asdict(r).items() if k != "blocks"}
                            for r in self.results]}

    def text(self) -> str:
        width = max((len(r.name) for r in self.results), default=0)
        lines = [f"{self.phase} of stack {self.stack} (target {self.target}) on "
                 f"{self.database}:"]
        for r in self.results:
            lines.append(f"  {r.status.upper():<4}  {r.name:<{width}}  "
                         + r.detail.replace("\n", "\n" + " " * (width + 10)))
            if r.status == FAIL and r.hint:
                lines.append(f"  {'':<4}  {'':<{width}}  fix: "
                             + r.hint.replace("\n", "\n" + " " * (width + 15)))
        verdict = "passed" if self.passed else f"FAILED ({len(self.failures)} of " \
            f"{len(self.results)} checks)"
        lines.append(f"{self.phase} {verdict} in {self.seconds:.2f}s")
        return "\n".join(lines) + "\n"

    def failure_message(self) -> str:
        """What a failed deployment says: every failed check, its detail and its fix."""
        parts = [f"{self.phase} failed on {self.database} (stack {self.stack}):"]
        for r in self.failures:
            parts.append(f"- {r.name}: {r.detail}\n  fix: {r.hint}")
        held = [r.name for r in self.results if r.status == SKIP and r.blocks]
        if held:
            parts.append(f"not run until those pass: {', '.join(held)}")
        return "\n".join(parts)


def _run_one(ctx: Context, check: Check) -> Outcome:
    try:
        with ctx.conn.transaction(force_rollback=True):
            ctx.conn.execute("SELECT pg_catalog.set_config('statement_timeout', %s, true)",
                             (STATEMENT_TIMEOUT,))
            return check.run(ctx)
    except psycopg.OperationalError as exc:
        if ctx.conn.closed or ctx.conn.broken:
            raise CheckRunError(f"the connection was lost during check {check.name}: {exc}"
                                ) from exc
        return failed(f"a query of the check failed: {exc}".strip(),
                      "see the error; the deploying role may lack a privilege")
    except psycopg.Error as exc:
        return failed(f"a query of the check failed: {str(exc).strip()}",
                      "see the error; the deploying role may lack a privilege")


def run_checks(phase: str, checks: Sequence[Check], ctx: Context, database: str) -> Report:
    started = time.perf_counter()
    results: list[Result] = []
    blocked: set[str] = set()
    for check in checks:
        held = [name for name in check.after if name in blocked]
        began = time.perf_counter()
        if held:
            outcome = Outcome(SKIP, f"not run: {', '.join(held)} did not pass")
        else:
            outcome = _run_one(ctx, check)
        if outcome.status == FAIL or (outcome.status == SKIP and outcome.blocks):
            blocked.add(check.name)
        results.append(Result(check.name, check.title, outcome.status, outcome.detail,
                              outcome.hint, round(time.perf_counter() - began, 3),
                              outcome.blocks))
    return Report(phase, ctx.settings.stack, ctx.settings.target, database, tuple(results),
                  time.perf_counter() - started)
