"""The CI scripts (scripts/ci/) the workflows call, run here as the workflows run them.

Each script runs against a stack of the test cluster (target postgres, the test's own
database) with the real `pulumi` CLI and a file backend: the preview prints the SQL diff
and writes the pull-request comment, the deploy creates the tables, the drift check passes
on a clean stack and, after a policy and a grant are changed by hand with psql, fails and
writes a report naming both. The drift issue script runs against a `gh` stand-in (there is
no GitHub here) that keeps its issues in a JSON file. actionlint passes on the workflows
and fails on a broken copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TestDatabase, app_role_for
from tests.support.engine import REPO, PulumiStack

pytestmark = pytest.mark.e2e

DIMS = 8
STACK = "staging"
WORKFLOWS = REPO / ".github" / "workflows"


def plan_command_exists() -> bool:
    """Whether this checkout has `python -m components plan` (issue 16's plan command)."""
    done = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-m", "components",
                           "plan", "--help"], cwd=REPO, capture_output=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    return done.returncode == 0


def run_script(name: str, stack: PulumiStack, out: Path, *args: str,
               extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**stack.env(), "MEM0_PROJECT_DIR": str(stack.project_dir),
           "MEM0_CI_OUT": str(out), **(extra_env or {})}
    env.pop("MEM0_PLAN_DSN", None)
    return subprocess.run(["bash", str(REPO / "scripts" / "ci" / name), *args], env=env,
                          capture_output=True, text=True, check=False, timeout=900,
                          stdin=subprocess.DEVNULL)


def psql(database: TestDatabase, sql: str) -> None:
    subprocess.run(["psql", database.dsn, "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                   capture_output=True)


def test_preview_deploy_and_drift_scripts_on_a_real_stack(
        make_stack, database: TestDatabase, tmp_path: Path) -> None:
    stack = make_stack(STACK, dimensions=DIMS)
    stack.write_config()  # the stack and its config, as `pulumi config set` left them
    out = tmp_path / "ci-out"
    has_plan = plan_command_exists()

    preview = run_script("preview.sh", stack, out, STACK)
    assert preview.returncode == 0, preview.stdout[-3000:] + preview.stderr[-3000:]
    assert "CREATE TABLE public.memories (" in preview.stdout
    assert "to create" in preview.stdout
    assert database.scalar("SELECT to_regclass('public.memories')") is None
    comment = (out / f"comment-{STACK}.md").read_text()
    assert comment.startswith(f"<!-- mem0infra:plan:{STACK} -->")
    assert "CREATE TABLE public.memories (" in comment and "to create" in comment
    if has_plan:
        assert (out / f"plan-{STACK}.md").read_text().strip() in comment
    else:
        assert "is not part of this checkout" in comment

    deploy = run_script("deploy.sh", stack, out, STACK)
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    assert database.scalar("SELECT to_regclass('public.memories')") is not None

    clean = run_script("drift.sh", stack, out, STACK)
    assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr[-3000:]
    assert (out / f"drift-{STACK}.status").read_text().strip() == "clean"
    assert not (out / f"drift-{STACK}.md").exists()

    app = app_role_for(database)
    psql(database, "ALTER POLICY memories_select_app ON public.memories USING (false)")
    psql(database, f"REVOKE DELETE ON public.memories FROM {app}")
    drift = run_script("drift.sh", stack, out, STACK)
    assert drift.returncode == 1, drift.stdout[-3000:] + drift.stderr[-3000:]
    assert (out / f"drift-{STACK}.status").read_text().strip() == "drift"
    report = (out / f"drift-{STACK}.md").read_text()
    assert report.startswith(f"<!-- mem0infra:drift:{STACK} -->")
    assert "### Drifted objects (2)" in report, report
    assert f"- `mem0-{STACK}-policies-public.memories_select_app` (update" in report
    assert f"- `mem0-{STACK}-grants-public.memories-to-{app}` (update" in report
    if has_plan:
        assert (out / f"plan-{STACK}.md").read_text().strip() in report
        assert "memories_select_app" in (out / f"plan-{STACK}.md").read_text()
    else:
        assert "is not part of this checkout" in report
        # Everything above ran; only the plan's part of the comment and report did not.
        pytest.skip("the plan's Markdown in the comment and the drift report is not "
                    "checked: `python -m components plan` is not in this checkout yet "
                    "(branch issue16-plan)")


def test_a_failing_preview_fails_the_job_and_the_comment_says_so(
        make_stack, tmp_path: Path) -> None:
    stack = make_stack(STACK, dimensions=DIMS, tenancy="everyone")
    stack.write_config()
    out = tmp_path / "ci-out"
    preview = run_script("preview.sh", stack, out, STACK)
    assert preview.returncode != 0
    assert "tenancy" in preview.stdout + preview.stderr
    comment = (out / f"comment-{STACK}.md").read_text()
    assert f"pulumi preview --diff: the preview failed (exit {preview.returncode})" in comment
    assert "tenancy" in comment


def test_a_drift_check_that_cannot_run_is_not_drift(
        make_stack, database: TestDatabase, tmp_path: Path) -> None:
    stack = make_stack(STACK, dimensions=DIMS)
    stack.write_config()
    out = tmp_path / "ci-out"
    # a stack never deployed, read with the wrong passphrase: the refresh cannot decrypt
    failed = run_script("drift.sh", stack, out, STACK,
                        extra_env={"PULUMI_CONFIG_PASSPHRASE": "not-the-passphrase"})
    assert failed.returncode == 2, failed.stdout[-3000:] + failed.stderr[-3000:]
    assert (out / f"drift-{STACK}.status").read_text().strip() == "error"
    assert not (out / f"drift-{STACK}.md").exists()


def test_a_bad_stack_name_is_refused_before_anything_runs(tmp_path: Path) -> None:
    for script in ("preview.sh", "deploy.sh", "drift.sh", "drift-issue.sh"):
        done = subprocess.run(["bash", str(REPO / "scripts" / "ci" / script), "prod;rm -rf"],
                              env={**os.environ, "MEM0_CI_OUT": str(tmp_path)},
                              capture_output=True, text=True, check=False)
        assert done.returncode == 2, (script, done.stderr)
        assert "usage:" in done.stderr and "a stack name" in done.stderr
    assert list(tmp_path.iterdir()) == []


# --- drift-issue.sh against a gh stand-in -----------------------------------------------------

FAKE_GH = r'''#!/usr/bin/env python3
"""A stand-in for gh: the issue commands drift-issue.sh runs, issues in $FAKE_GH_STATE."""
import json, os, sys
path = os.environ["FAKE_GH_STATE"]
state = json.load(open(path)) if os.path.exists(path) else {"issues": [], "calls": []}
args = sys.argv[1:]
state["calls"].append(args)
def opt(name):
    return args[args.index(name) + 1]
if args[:2] == ["issue", "list"]:
    found = [{"number": i["number"], "title": i["title"]} for i in state["issues"]
             if i["state"] == "open" and opt("--label") in i["labels"]]
    title = opt("--jq").split('.title == "')[1].split('"')[0]
    print("\n".join(str(i["number"]) for i in found if i["title"] == title))
elif args[:2] == ["issue", "create"]:
    number = 100 + len(state["issues"])
    state["issues"].append({"number": number, "title": opt("--title"), "state": "open",
                            "labels": [opt("--label")], "body": open(opt("--body-file")).read()})
    print(f"https://github.com/o/r/issues/{number}")
elif args[:2] == ["issue", "edit"]:
    [issue] = [i for i in state["issues"] if i["number"] == int(args[2])]
    issue["body"] = open(opt("--body-file")).read()
elif args[:2] == ["issue", "close"]:
    [issue] = [i for i in state["issues"] if i["number"] == int(args[2])]
    issue["state"] = "closed"
elif args[:2] != ["label", "create"]:
    sys.exit(f"fake gh: unexpected {args}")
json.dump(state, open(path, "w"))
'''


def test_drift_issue_is_opened_once_updated_then_closed(tmp_path: Path) -> None:
    bin_dir, out = tmp_path / "bin", tmp_path / "out"
    bin_dir.mkdir()
    out.mkdir()
    (bin_dir / "gh").write_text(FAKE_GH)
    (bin_dir / "gh").chmod(0o755)
    state = tmp_path / "gh.json"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "FAKE_GH_STATE": str(state), "MEM0_CI_OUT": str(out)}

    def run(status: str | None, report: str | None) -> dict[str, list[dict[str, object]]]:
        for name, text in ((f"drift-{STACK}.status", status), (f"drift-{STACK}.md", report)):
            (out / name).unlink(missing_ok=True)
            if text is not None:
                (out / name).write_text(text)
        done = subprocess.run(["bash", str(REPO / "scripts" / "ci" / "drift-issue.sh"), STACK],
                              env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return dict(json.loads(state.read_text())) if state.exists() else {"issues": []}

    # another stack's open drift issue is never touched
    state.write_text(json.dumps({"calls": [], "issues": [
        {"number": 7, "title": "Drift on stack prod", "state": "open",
         "labels": ["mem0infra-drift"], "body": "prod"}]}))
    first = run("drift", "report one")
    [mine] = [i for i in first["issues"] if i["title"] == f"Drift on stack {STACK}"]
    assert mine["state"] == "open" and mine["body"] == "report one"
    second = run("drift", "report two")
    assert len(second["issues"]) == 2  # updated, not duplicated
    assert [i["body"] for i in second["issues"] if i["number"] == mine["number"]] == [
        "report two"]
    # the check could not run: the issue stays open and unchanged
    assert run("error", None)["issues"] == second["issues"]
    assert run(None, None)["issues"] == second["issues"]
    closed = run("clean", None)
    assert [i["state"] for i in closed["issues"]] == ["open", "closed"]
    assert closed["issues"][0]["body"] == "prod"


# --- actionlint ----------------------------------------------------------------------------------

def actionlint() -> str:
    done = subprocess.run(["bash", str(REPO / "scripts" / "install-actionlint.sh")],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_actionlint_passes_on_the_workflows_and_fails_on_a_broken_copy(tmp_path: Path) -> None:
    workflows = sorted(WORKFLOWS.glob("*.yml"))
    assert {p.name for p in workflows} == {"preview.yml", "deploy.yml", "drift.yml"}
    done = subprocess.run([actionlint(), "-no-color", *map(str, workflows)], cwd=REPO,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr

    # A copy of the repository's .github with two mistakes: a job that needs a job that
    # does not exist, and an expression naming an unknown context.
    copy = tmp_path / "repo"
    shutil.copytree(REPO / ".github", copy / ".github")
    broken = copy / ".github" / "workflows" / "deploy.yml"
    text = broken.read_text()
    text = text.replace("needs: staging", "needs: stagin").replace(
        "secrets.PULUMI_CONFIG_PASSPHRASE", "secret.PULUMI_CONFIG_PASSPHRASE")
    broken.write_text(text)
    failed = subprocess.run([actionlint(), "-no-color", str(broken)], cwd=copy,
                            capture_output=True, text=True, check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert 'job "prod" needs job "stagin" which does not exist' in failed.stdout, failed.stdout
    assert 'undefined variable "secret"' in failed.stdout, failed.stdout
