"""The dynamic provider of the check resources: preflight before any change, validation
(and the benchmark, where the stack enables it) after every change.

A check resource's inputs fingerprint the stack's whole schema, so it runs in `pulumi up`
whenever anything the stack declares changed, and never in `pulumi preview` (the engine
calls create and update only when applying). A failed check raises: the deployment fails
with every failed check and its fix, and the resource keeps its old state, so the next
`up` runs the checks again. `read` reports no drift: a check has no live state, and the
drift of the objects it checks belongs to those objects.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from typing import Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from components.checks.core import Phase
from components.errors import ExitCode, Mem0InfraError
from components.model import ObjectSpec
from components.provider import ConfiguredTls, current_connection
from components.settings import PROJECT, settings_from_payload

PHASES = (Phase.PREFLIGHT, Phase.VALIDATE)
# Inputs whose change runs the checks again; `connection`, `poolerUrl` and
# `appRolePassword` are credentials (a rotated password is not a changed schema).
RUN_KEYS = ("phase", "database", "fingerprint", "settings", "benchmark")


class ChecksFailed(Mem0InfraError):
    """A check failed: the message is the report's failures with their fixes.

    Raised inside the Pulumi provider, where the engine reports it (no command exits with
    it); its exit code is the one a failed check has on the command line."""

    exit_code = ExitCode.FAILED


def schema_fingerprint(specs: Sequence[ObjectSpec]) -> str:
    """sha256 of every declared object's key and definition, in order."""
    digest = hashlib.sha256()
    for spec in specs:
        digest.update(json.dumps([spec.key, spec.ddl, spec.notes]).encode())
    return digest.hexdigest()


def bench_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What a stack output keeps of a benchmark report: the verdict and each threshold."""
    return {"passed": report["passed"], "rows": report["parameters"]["rows"],
            "thresholds": report["thresholds"]}


def _bench_failure(summary: dict[str, Any]) -> str:
    from components.bench.thresholds import failures

    return ("benchmark over its thresholds (size the server or the index up, or raise the "
            "setting named):\n" + "\n".join(f"- {line}" for line in
                                            failures(summary["thresholds"])))


class ChecksProvider(ResourceProvider):
    serialize_as_secret_always = False

    def configure(self, req: ConfigureRequest) -> None:
        # As for the SQL objects: the stack's current credentials beat those state froze.
        self._configured_url = req.config.get(f"{PROJECT}:databaseUrl") or None
        self._configured_pooler = req.config.get(f"{PROJECT}:poolerUrl") or None
        self._configured_app_password = req.config.get(f"{PROJECT}:appRolePassword") or None
        self._tls = ConfiguredTls(req.config.get)

    def _connection(self, props: dict[str, Any]) -> str:
        return current_connection(getattr(self, "_configured_url", None), props,
                                  getattr(self, "_tls", None))

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        if news.get("phase") not in PHASES:
            failures.append(CheckFailure("phase", f"unknown phase {news.get('phase')!r}; "
                                         f"allowed: {', '.join(PHASES)}"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in RUN_KEYS if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[])

    def _run(self, props: dict[str, Any]) -> dict[str, Any]:
        from components.checks.command import run_phase  # psycopg only; no Pulumi inside

        pooler = getattr(self, "_configured_pooler", None) or props.get("poolerUrl") or None
        # The tls check logs in as the app role, with its password, as mem0 does.
        app_password = (getattr(self, "_configured_app_password", None)
                        or props.get("appRolePassword") or None)
        settings = settings_from_payload(props["settings"], pooler_url=pooler,
                                         app_role_password=app_password)
        dsn = self._connection(props)
        report = run_phase(props["phase"], dsn, settings)
        if not report.passed:
            raise ChecksFailed(report.failure_message())
        summary: dict[str, Any] = report.summary()
        if props.get("benchmark"):
            from components.bench import run_stack_benchmark

            bench = bench_summary(run_stack_benchmark(dsn, settings))
            summary["benchmark"] = bench
            if not bench["passed"]:
                raise ChecksFailed(_bench_failure(bench))
        return {**props, "summary": summary}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"{props['phase']}-{secrets.token_hex(4)}", self._run(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._run(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None
