"""The one check framework of preflight, validate and audit: named checks, run in order
with prerequisites, each giving a status, a detail, a fix and, for the audit, findings.

A check whose prerequisite did not pass is skipped, not run: its failure would only repeat
the cause (with the extension gone every table differs; with a policy altered the
enforcement test proves nothing). So one fault fails exactly one check, and the report
names the checks it held back. Each check runs in its own transaction, rolled back, with a
statement timeout: checks read, and whatever they write to prove a behaviour is undone.

A check may instead list findings (the audit's): each names an object, what is wrong with
it at a `Level`, and its fix; the check fails when it found any. A report of such checks
reads as one block per finding (`Report.text`), and its JSON lists the findings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import psycopg

from components.errors import Mem0InfraError
from components.kinds import Kind
from components.model import ObjectSpec
from components.settings import Settings

STATEMENT_TIMEOUT = "60s"  # per statement of a check: a lock held elsewhere must not hang it


class Phase(StrEnum):
    """Which set of checks a report is of."""

    PREFLIGHT = "preflight"  # before any change: can this database take the stack?
    VALIDATE = "validate"  # after every change: does the deployed schema do its job?
    AUDIT = "audit"  # on demand: is the live database secure, and as declared?


class Status(StrEnum):
    """How a check ended."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


class Level(StrEnum):
    """How serious an audit finding is (both fail the audit)."""

    ERROR = "error"
    WARN = "warn"


# The names the checks and their tests import.
PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIP


class CheckRunError(Mem0InfraError):
    """The checks could not run at all: no connection, the session lost."""


@dataclass(frozen=True)
class Finding:
    """One thing a listing check found wrong with one object."""

    code: str  # which rule, e.g. rls_disabled_in_public
    level: Level
    object: str  # "<kind> <schema-qualified name>", or a spec's key
    message: str  # what is wrong
    fix: str  # a concrete SQL statement, or how to redeploy


@dataclass(frozen=True)
class Outcome:
    """What one check returns."""

    status: Status
    detail: str  # what was found, in a line or a few
    hint: str = ""  # for a failure: what to do about it
    blocks: bool = True  # a SKIP that holds back the checks after it (False: not applicable)
    findings: tuple[Finding, ...] = ()  # a listing check's findings (each with its fix)


def passed(detail: str) -> Outcome:
    return Outcome(PASS, detail)


def failed(detail: str, hint: str) -> Outcome:
    return Outcome(FAIL, detail, hint)


def not_applicable(detail: str) -> Outcome:
    """Skipped because the stack does not use what the check checks (never a problem)."""
    return Outcome(SKIP, detail, blocks=False)


def not_visible(detail: str, hint: str) -> Outcome:
    """Skipped because the session may not read what the check reads: not a pass, and a
    report of findings says so (with `hint`, how to look) where it would say nothing."""
    return Outcome(SKIP, detail, hint, blocks=False)


def found(findings: Sequence[Finding]) -> Outcome:
    """A listing check's outcome: it fails when it found anything, warnings included."""
    if not findings:
        return passed("no findings")
    errors = sum(f.level == Level.ERROR for f in findings)
    return Outcome(FAIL, f"{len(findings)} findings ({errors} errors, "
                         f"{len(findings) - errors} warnings)",
                   "see each finding's fix", findings=tuple(findings))


@dataclass(frozen=True)
class Context:
    """What every check reads: an open session and what the stack declares."""

    conn: psycopg.Connection[Any]
    settings: Settings
    specs: tuple[ObjectSpec, ...]
    dsn: str  # for checks that open sessions of their own (the pooler)

    @property
    def server_version(self) -> int:
        """As libpq reports it: 150004 for 15.4."""
        return self.conn.info.server_version

    def rows(self, query: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(query, params).fetchall()

    def value(self, query: str, params: Sequence[object] = ()) -> Any:
        row = self.conn.execute(query, params).fetchone()
        return None if row is None else row[0]

    def of_kind(self, *kinds: Kind) -> list[ObjectSpec]:
        return [s for s in self.specs if s.kind in kinds]

    def declares(self, kind: Kind, schema: str, name: str) -> bool:
        return any(s.kind == kind and s.schema == schema and s.name == name
                   for s in self.specs)


@dataclass(frozen=True)
class Check:
    name: str
    title: str  # what it verifies, one line
    run: Callable[[Context], Outcome]
    after: tuple[str, ...] = ()  # checks that must pass first
    codes: tuple[str, ...] = ()  # a listing check: the finding codes it may report


def finding_check(name: str, title: str, find: Callable[[Context], Sequence[Finding]],
                  codes: tuple[str, ...] = ()) -> Check:
    """A check that lists findings (codes: those it may report; default its name)."""
    return Check(name, title, lambda ctx: found(find(ctx)), codes=codes or (name,))


@dataclass(frozen=True)
class Result:
    name: str
    title: str
    status: Status
    detail: str
    hint: str
    seconds: float
    blocks: bool = field(default=True, repr=False)
    findings: tuple[Finding, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Report:
    """Every check's result, rendered as text or JSON the same way for every phase."""

    phase: Phase
    stack: str
    target: str
    database: str  # host:port/dbname, no credentials
    results: tuple[Result, ...]
    seconds: float
    checked: tuple[str, ...] = ()  # the finding codes of listing checks, in order

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.status == FAIL]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings]

    @property
    def lists_findings(self) -> bool:
        """Whether the checks list findings (the audit): then a report reads by finding."""
        return bool(self.checked)

    def summary(self) -> dict[str, Any]:
        """The short form: stack outputs and the head of the JSON document."""
        return {
            "phase": str(self.phase), "passed": self.passed, "checks": len(self.results),
            "failed": [r.name for r in self.failures],
            "skipped": [r.name for r in self.results if r.status == SKIP],
            "seconds": round(self.seconds, 3)}

    def finding_summary(self) -> dict[str, Any]:
        """Where the findings were looked for, and how many of each level and code."""
        findings = self.findings
        by_code = {code: sum(f.code == code for f in findings) for code in self.checked}
        return {
            "stack": self.stack, "target": self.target, "database": self.database,
            "findings": len(findings),
            "errors": sum(f.level == Level.ERROR for f in findings),
            "warnings": sum(f.level == Level.WARN for f in findings),
            "by_code": {code: count for code, count in by_code.items() if count}}

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "stack": self.stack, "target": self.target, "database": self.database,
            **self.summary(),
            "results": [{"name": r.name, "title": r.title, "status": str(r.status),
                         "detail": r.detail, "hint": r.hint, "seconds": r.seconds}
                        for r in self.results]}
        if self.lists_findings:
            document.update(findings=[asdict(f) for f in self.findings],
                            checked=list(self.checked), summary=self.finding_summary())
        return document

    def text(self) -> str:
        return self._finding_text() if self.lists_findings else self._check_text()

    def _check_text(self) -> str:
        """One line per check, a fix under each failure, the verdict last."""
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

    def _finding_text(self) -> str:
        """One block per finding (level, code, object; message; fix), the counts last."""
        findings = self.findings
        blocks = []
        for f in findings:
            message = f.message.replace("\n", "\n    ")
            blocks.append(f"[{f.level}] {f.code}: {f.object}\n  {message}\n  fix: {f.fix}\n")
        for r in self.results:
            if r.status == SKIP and r.hint:  # could not look (not_visible): not a pass
                blocks.append(f"[not checked] {r.name}\n  {r.detail}\n  to check: {r.hint}\n")
        s = self.finding_summary()
        where = f"{self.database} (stack {self.stack}, target {self.target})"
        total = (f"{s['findings']} findings ({s['errors']} errors, {s['warnings']} warnings)"
                 if findings else "no findings")
        blocks.append(f"{total} from {len(self.checked)} checks on {where}\n")
        return "\n".join(blocks)

    def failure_message(self) -> str:
        """What a failed deployment says: every failed check, its detail and its fix."""
        parts = [f"{self.phase} failed on {self.database} (stack {self.stack}):"]
        for r in self.failures:
            parts.append(f"- {r.name}: {r.detail}\n  fix: {r.hint}")
        held = [r.name for r in self.results if r.status == SKIP and r.blocks]
        if held:
            parts.append(f"not run until those pass: {', '.join(held)}")
        return "\n".join(parts)


def _run_one(ctx: Context, check: Check, read_only: bool,
             abort: type[Mem0InfraError] | None, phase: Phase) -> Outcome:
    try:
        with ctx.conn.transaction(force_rollback=True):
            if read_only:  # must come first: SET TRANSACTION precedes every query
                ctx.conn.execute("SET TRANSACTION READ ONLY")
            ctx.conn.execute("SELECT pg_catalog.set_config('statement_timeout', %s, true)",
                             (STATEMENT_TIMEOUT,))
            return check.run(ctx)
    except psycopg.Error as exc:
        if abort is not None:
            raise abort(f"the {phase} failed: {exc}") from exc
        if isinstance(exc, psycopg.OperationalError) and (ctx.conn.closed or ctx.conn.broken):
            raise CheckRunError(f"the connection was lost during check {check.name}: {exc}"
                                ) from exc
        return failed(f"a query of the check failed: {str(exc).strip()}",
                      "see the error; the deploying role may lack a privilege")


def run_checks(phase: Phase | str, checks: Sequence[Check], ctx: Context, database: str, *,
               read_only: bool = False, abort: type[Mem0InfraError] | None = None) -> Report:
    """Run `checks` in order on `ctx`, each in its own rolled-back transaction.

    read_only: each transaction is READ ONLY, so no check can write. abort: a failed query
    raises this error (the run could not be done) instead of failing its check.
    """
    phase = Phase(phase)
    started = time.perf_counter()
    results: list[Result] = []
    blocked: set[str] = set()
    for check in checks:
        held = [name for name in check.after if name in blocked]
        began = time.perf_counter()
        if held:
            outcome = Outcome(SKIP, f"not run: {', '.join(held)} did not pass")
        else:
            outcome = _run_one(ctx, check, read_only, abort, phase)
        if outcome.status == FAIL or (outcome.status == SKIP and outcome.blocks):
            blocked.add(check.name)
        results.append(Result(check.name, check.title, Status(outcome.status),
                              outcome.detail, outcome.hint,
                              round(time.perf_counter() - began, 3), outcome.blocks,
                              outcome.findings))
    return Report(phase, ctx.settings.stack, ctx.settings.target, database, tuple(results),
                  time.perf_counter() - started,
                  tuple(code for check in checks for code in check.codes))
