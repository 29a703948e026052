"""`python -m components plan --stack S --dsn URL [--markdown FILE] [--json]`.

Exit codes (components/errors.py): OK the database matches the stack, FAILED `up` would
change something (objects or access), UNUSABLE the plan could not run (a bad stack, no
database).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from components.connection import command_dsn
from components.errors import ExitCode
from components.plan.build import make_plan
from components.plan.render import as_json, markdown, text
from components.stackfile import add_stack_arguments, command_settings

HELP = ("compare the stack's declared objects with the database given by --dsn and print "
        "what `up` would run: SQL per object, its hazards (locks, index builds and their "
        "estimated time, rows lost, rewrites) and the access changes in words")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser, "a role that may read the catalog and count the rows")
    parser.add_argument("--markdown", type=Path, default=None, metavar="FILE",
                        help="also write the plan as Markdown (a pull-request comment) here")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document instead of the text plan")


def command(args: argparse.Namespace) -> int:
    settings = command_settings(args)
    dsn = command_dsn(args.dsn, settings, "plan", "plan against")
    plan = make_plan(dsn, settings)
    if args.markdown is not None:
        args.markdown.write_text(markdown(plan), encoding="utf-8")
    sys.stdout.write(json.dumps(as_json(plan), indent=2) + "\n" if args.json else text(plan))
    return ExitCode.FAILED if plan.changed else ExitCode.OK
