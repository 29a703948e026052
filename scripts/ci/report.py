"""Markdown of the CI scripts: the pull-request comment of preview.sh, the drift report of
drift.sh (docs/ci.md shows both).

    report.py comment --stack S --preview FILE --preview-status N \
        --plan FILE --plan-status N --output FILE
    report.py drift --stack S --refresh FILE --plan FILE --plan-status N --output FILE

Standard library only, so it runs before or without the project's venv.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

# GitHub refuses a comment or issue body over 65536 characters; the CLI's output is cut
# to leave room for the plan and the framing.
BODY_LIMIT = 65_000
# A resource line of the CLI's preview/refresh output:
#   ~ pulumi-python:dynamic/mem0:SqlObject mem0-dev-policies-public.memories_select_app update
RESOURCE_LINE = re.compile(
    r"^\s*(?P<sign>\+-|[-+~])\s+(?P<type>\S+:\S+)\s+(?P<name>\S+)\s+"
    r"(?P<op>create|update|delete|replace|read|refresh)\b")
# The progress lines a non-interactive refresh prints for every resource (`refreshing`,
# `running`, or a bare type and name): noise in a report.
PROGRESS_LINE = re.compile(
    r"^(\s*~?\s+\S+:\S+ \S+\s*(refreshing|running)?|@ previewing refresh\.*)\s*$")
SUMMARY_LINE = re.compile(r"^\s*[-+~]?\s*\d+ (to \w+|unchanged)\s*$")
MARKER = "<!-- mem0infra:{kind}:{stack} -->"


def drifted(refresh_output: str) -> list[tuple[str, str, str]]:
    """(operation, name, type) of each object the refresh would change."""
    found = []
    for line in refresh_output.splitlines():
        match = RESOURCE_LINE.match(line)
        if match and match["op"] in ("update", "delete", "replace"):
            found.append((match["op"], match["name"], match["type"]))
    return found


def summary(output: str) -> str:
    """The CLI's `N to update` lines, joined."""
    return ", ".join(line.strip() for line in output.splitlines() if SUMMARY_LINE.match(line))


def fenced(text: str, room: int, lang: str = "") -> str:
    """`text` in a code fence, its head kept when it exceeds `room` characters."""
    if len(text) > room:
        text = text[:room] + f"\n... cut: {len(text) - room} more characters in the job log\n"
    return f"```{lang}\n{text.rstrip()}\n```"


def plan_section(plan: Path, status: str) -> str:
    if status == "skipped":
        return ("_The plan (`python -m components plan`) is not part of this checkout: "
                "only the engine's preview below._")
    if status == "2" or not plan.exists():
        return (f"**The plan could not run (exit {status}).** The job log says why; the "
                "engine's preview is below.")
    return plan.read_text(encoding="utf-8").strip()


def comment(args: argparse.Namespace) -> str:
    preview = args.preview.read_text(encoding="utf-8", errors="replace")
    verdict = (f"the preview failed (exit {args.preview_status})"
               if args.preview_status != "0" else summary(preview) or "no changes")
    head = "\n\n".join([
        MARKER.format(kind="plan", stack=args.stack),
        f"## mem0infra: stack `{args.stack}`",
        plan_section(args.plan, args.plan_status),
        f"<details><summary>pulumi preview --diff: {verdict}</summary>\n"])
    tail = "\n</details>\n"
    room = BODY_LIMIT - len(head) - len(tail) - 200
    return head + "\n" + fenced(preview, room, "diff") + tail


def drift(args: argparse.Namespace) -> str:
    refresh = args.refresh.read_text(encoding="utf-8", errors="replace")
    objects = drifted(refresh)
    refresh = "\n".join(line for line in refresh.splitlines() if not PROGRESS_LINE.match(line))
    listed = "\n".join(f"- `{name}` ({op}: {type_.rsplit(':', 1)[-1]})"
                       for op, name, type_ in objects) or "- (none named: see the output)"
    head = "\n\n".join([
        MARKER.format(kind="drift", stack=args.stack),
        f"## Drift on stack `{args.stack}`",
        "`pulumi refresh --preview-only --expect-no-changes` found the live database "
        "different from the stack's state. `update` means the object was changed by hand, "
        "`delete` that it is gone. The next `pulumi up` puts back what the stack declares "
        "(the plan below says what it would run).",
        f"### Drifted objects ({len(objects)})\n\n{listed}",
        # the plan's Markdown has its own heading; what stands in for it gets one
        plan_section(args.plan, args.plan_status) if args.plan_status in ("0", "1")
        and args.plan.exists() else "### Plan\n\n" + plan_section(args.plan, args.plan_status),
        "<details><summary>pulumi refresh --preview-only output</summary>\n"])
    tail = "\n</details>\n"
    room = BODY_LIMIT - len(head) - len(tail) - 200
    return head + "\n" + fenced(refresh, room) + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("comment", "drift"):
        sub = commands.add_parser(name)
        sub.add_argument("--stack", required=True)
        sub.add_argument("--plan", type=Path, required=True)
        sub.add_argument("--plan-status", required=True)
        sub.add_argument("--output", type=Path, required=True)
        if name == "comment":
            sub.add_argument("--preview", type=Path, required=True)
            sub.add_argument("--preview-status", required=True)
        else:
            sub.add_argument("--refresh", type=Path, required=True)
    args = parser.parse_args(argv)
    body = comment(args) if args.command == "comment" else drift(args)
    args.output.write_text(body, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
