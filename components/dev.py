"""The `dev` command: start, stop or show the embedded server of a stack (target embedded).

The server is a PostgreSQL with pgvector from the `pgserver` package, data under the
stack's `embeddedDataDir` (default `.pgdata/<stack>`, relative to the project directory).
Whoever needs it first starts it: `pulumi up` (the EmbeddedPostgres resource), each
provider call of the engine (refresh and destroy run without the program), or this
command. It keeps running after the command that started it, so mem0 and the next
deployment reach it, until `dev stop`; `pulumi destroy` stops it too and keeps the data.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from components.connection import running_embedded, start_embedded, stop_embedded
from components.errors import ExitCode, Mem0InfraError
from components.stackfile import load_stack_settings, project_dir

__all__ = ["ACTIONS", "DevError", "add_arguments", "command"]

ACTIONS = ("start", "stop", "status")


class DevError(Mem0InfraError):
    """The stack has no embedded server."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS,
                        help="start (or find) the server, stop it, or show whether it runs")
    parser.add_argument("--stack", default="dev",
                        help="stack name: reads Pulumi.<stack>.yaml (default: dev)")
    parser.add_argument("--project-dir", type=Path, default=None,
                        help="directory holding Pulumi.yaml (default: found from the cwd)")
    parser.add_argument("--json", action="store_true", help="print the state as JSON")


def command(args: argparse.Namespace) -> int:
    directory = project_dir(args.project_dir)
    settings = load_stack_settings(args.stack, directory)
    if settings.target != "embedded":
        raise DevError(f"stack {args.stack!r}: target is {settings.target!r}; `dev` serves "
                       "only target 'embedded' (allowed: a stack whose target is embedded)")
    data_dir = (directory / settings.embedded_data_dir).resolve()
    if args.action == "start":
        uri: str | None = start_embedded(data_dir)
        message = "running"
    elif args.action == "stop":
        message = "stopped" if stop_embedded(data_dir) else "not running"
        uri = None
    else:
        uri = running_embedded(data_dir)
        message = "running" if uri else "not running"
    state = {"stack": args.stack, "dataDir": str(data_dir), "running": uri is not None,
             "uri": uri}
    if args.json:
        print(json.dumps(state))
    else:
        where = f": {uri}" if uri else ""
        print(f"embedded server of stack {args.stack} ({data_dir}): {message}{where}")
    return ExitCode.OK
