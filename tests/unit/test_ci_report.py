"""scripts/ci/report.py: the drifted objects read from the CLI's output, bodies GitHub takes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def load_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_report", REPO / "scripts/ci/report.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["ci_report"] = module
    spec.loader.exec_module(module)
    return module


REFRESH = """Previewing refresh (prod):

 ~  pulumi:pulumi:Stack mem0infra-prod refreshing
    mem0:index:Grants mem0-prod-grants
 ~  pulumi-python:dynamic/mem0:SqlObject mem0-prod-policies-public.memories_select_app update \
[diff: ~ddl]
 -  pulumi-python:dynamic/mem0:SqlObject mem0-prod-indexes-public.memories_user_id_idx delete
 ~  pulumi-python:dynamic/mem0:SqlObject mem0-prod-roles-mem0_app refreshing
Resources:
    ~ 1 to update
    - 1 to delete
    120 unchanged
"""


def test_drifted_objects_are_the_updated_and_deleted_ones() -> None:
    report = load_report()
    assert report.drifted(REFRESH) == [
        ("update", "mem0-prod-policies-public.memories_select_app",
         "pulumi-python:dynamic/mem0:SqlObject"),
        ("delete", "mem0-prod-indexes-public.memories_user_id_idx",
         "pulumi-python:dynamic/mem0:SqlObject")]
    assert report.summary(REFRESH) == "~ 1 to update, - 1 to delete, 120 unchanged"


def test_a_huge_preview_is_cut_to_a_comment_github_accepts(tmp_path: Path) -> None:
    report = load_report()
    preview = tmp_path / "preview.txt"
    preview.write_text("+ CREATE TABLE x ();\n" * 20_000 + "    + 1 to create\n")
    plan = tmp_path / "plan.md"
    plan.write_text("### mem0infra plan: stack `prod`\n\n1 to create\n")
    output = tmp_path / "comment.md"
    assert report.main(["comment", "--stack", "prod", "--preview", str(preview),
                        "--preview-status", "0", "--plan", str(plan), "--plan-status", "1",
                        "--output", str(output)]) == 0
    body = output.read_text()
    assert len(body) <= 65_536
    assert body.startswith("<!-- mem0infra:plan:prod -->")
    assert "### mem0infra plan: stack `prod`" in body
    assert "more characters in the job log" in body
    assert body.rstrip().endswith("</details>")


def test_a_plan_that_could_not_run_is_said_not_hidden(tmp_path: Path) -> None:
    report = load_report()
    refresh = tmp_path / "refresh.txt"
    refresh.write_text(REFRESH)
    output = tmp_path / "drift.md"
    report.main(["drift", "--stack", "prod", "--refresh", str(refresh), "--plan",
                 str(tmp_path / "none.md"), "--plan-status", "2", "--output", str(output)])
    body = output.read_text()
    assert "**The plan could not run (exit 2).**" in body
    assert "### Drifted objects (2)" in body
    assert "- `mem0-prod-indexes-public.memories_user_id_idx` (delete: SqlObject)" in body
    assert "refreshing" not in body  # the progress lines are left out
