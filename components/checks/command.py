"""`python -m components preflight|validate`: the checks against any database.

Exit codes (components/errors.py): OK every check passed, FAILED a check failed, UNUSABLE
the checks could not run (bad arguments, no database, the connection lost).
"""

from __future__ import annotations

import argparse
import json
import sys

from components.checks import preflight, validate
from components.checks.core import Check, CheckRunError, Context, Phase, Report, run_checks
from components.connection import (
    command_dsn,
    database_identity,
    open_session,
)
from components.errors import ExitCode
from components.model import build_model
from components.settings import Settings
from components.stackfile import add_stack_arguments, command_settings

APPLICATION = "mem0infra-checks"
PHASES: dict[Phase, tuple[Check, ...]] = {Phase.PREFLIGHT: preflight.CHECKS,
                                          Phase.VALIDATE: validate.CHECKS}
HELP = {
    Phase.PREFLIGHT: "check that the database given by --dsn can take the stack before "
                     "any change: server and pgvector versions, pg_cron, the deploying "
                     "role's privileges, the target's shape",
    Phase.VALIDATE: "check a deployed stack in the database given by --dsn: every declared "
                    "object, index validity and use, row-level security enforced, search "
                    "settings, a rolled-back mem0 round trip, the pooler, the jobs' last runs "
                    "and the newest snapshot's age",
}


def run_phase(phase: Phase | str, dsn: str, settings: Settings) -> Report:
    """Run one phase's checks on `dsn` (a URL or an `embedded:` spec); CheckRunError when
    the checks cannot run."""
    phase = Phase(phase)
    with open_session(dsn, APPLICATION, CheckRunError) as conn:
        ctx = Context(conn, settings, tuple(build_model(settings)), dsn)
        return run_checks(phase, PHASES[phase], ctx, database_identity(dsn))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser, "the deploying role")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document instead of the text report")


def command(args: argparse.Namespace) -> int:
    phase = Phase(args.command)
    settings = command_settings(args)
    dsn = command_dsn(args.dsn, settings, phase, f"run the {phase} on")
    report = run_phase(phase, dsn, settings)
    sys.stdout.write(json.dumps(report.as_json(), indent=2) + "\n" if args.json
                     else report.text())
    return ExitCode.OK if report.passed else ExitCode.FAILED
