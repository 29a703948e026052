"""`python -m components settings`: print what the declarations generate.

`--pulumi-yaml` prints Pulumi.yaml's `config:` block (with `--write`, rewrites it in the
project's Pulumi.yaml instead); `--readme-table` prints README.md's settings table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.errors import ExitCode
from components.settings.markdown import settings_table_markdown
from components.settings.pulumiyaml import pulumi_config_block, rewrite_pulumi_yaml
from components.stackfile import project_dir

__all__ = ["HELP", "add_arguments", "command"]

HELP = "print Pulumi.yaml's config block or README.md's settings table, from the declarations"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--pulumi-yaml", action="store_true",
                      help="Pulumi.yaml's `config:` block")
    what.add_argument("--readme-table", action="store_true",
                      help="README.md's table of stack settings")
    parser.add_argument("--write", action="store_true",
                        help="with --pulumi-yaml: rewrite the block in the project's "
                             "Pulumi.yaml instead of printing it")
    parser.add_argument("--project-dir", type=Path, default=None,
                        help="directory holding Pulumi.yaml (default: found from the cwd)")


def command(args: argparse.Namespace) -> int:
    if args.write and not args.pulumi_yaml:
        print("error: --write: allowed only with --pulumi-yaml", file=sys.stderr)
        return ExitCode.UNUSABLE
    if args.write:
        path = project_dir(args.project_dir) / "Pulumi.yaml"
        changed = rewrite_pulumi_yaml(path)
        print(f"{path}: {'config block rewritten' if changed else 'already up to date'}",
              file=sys.stderr)
        return ExitCode.OK
    text = pulumi_config_block() if args.pulumi_yaml else settings_table_markdown() + "\n"
    sys.stdout.write(text)
    return ExitCode.OK
