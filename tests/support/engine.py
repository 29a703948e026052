"""The real Pulumi engine for the tests: every deployment goes through the `pulumi` CLI.

`PulumiStack` is one stack of this project in a throw-away copy of the project directory
(Pulumi.yaml and __main__.py copied, `.venv` linked to the repository's), with a local
file backend and the passphrase secrets provider. Each call runs the CLI that
scripts/install-pulumi.sh builds (or finds cached), with the engine's event log, and
returns a `Report` read from that log: the operations per resource, the drift a
`refresh --preview-only` shows, the stack outputs and which of them are secret, and the
CLI's output when the command failed.

The stack's config is rewritten before every command from the repository's
`Pulumi.<stack>.yaml` (encrypted values left out: the test gives its own) and the test's
settings, through `pulumi config set-all` (`--secret` for the secret settings), so a
stack reused with other settings deploys exactly those.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.settings import PROJECT, SETTINGS, EncryptedValue
from components.stackfile import read_stack_config

REPO = Path(__file__).resolve().parents[2]
PASSPHRASE = "tests-passphrase"
SECRET_SETTINGS = frozenset(spec.key for spec in SETTINGS if spec.secret)
COMMAND_TIMEOUT = 900
# The engine's ops of one replacement, reported as one "replace" as `pulumi up` shows it.
REPLACE_OPS = ("replace", "create-replacement", "delete-replaced")
SECRET_SIG, SECRET_MARK = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


class EngineError(RuntimeError):
    """The CLI could not be built or run, or a command the test expected to pass failed."""


@functools.cache
def pulumi_bin() -> Path:
    """The directory of `pulumi` and its companions, built on first use."""
    done = subprocess.run(["bash", str(REPO / "scripts" / "install-pulumi.sh")],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EngineError(f"scripts/install-pulumi.sh failed ({done.returncode}):\n"
                          f"{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@dataclass
class Report:
    """What one CLI command did, read from the engine's event log."""

    mode: str
    operations: list[dict[str, Any]]
    outputs: dict[str, Any]
    secret_outputs: list[str]
    drift: list[dict[str, Any]]
    error: str | None
    output: str = ""  # everything the CLI printed
    resources: list[dict[str, Any]] = field(default_factory=list)  # as the program declared
    exit_code: int = 0

    def ops(self, op: str | None = None) -> dict[str, str]:
        """urn -> operation (or only the urns with `op`), custom resources only."""
        found = {o["urn"]: o["op"] for o in self.operations}
        return {u: o for u, o in found.items() if op is None or o == op}

    def ops_by_type(self, type_suffix: str) -> dict[str, str]:
        return {u: o for u, o in self.ops().items() if u.split("::")[2].endswith(type_suffix)}

    def raise_for_error(self) -> Report:
        if self.error:
            raise EngineError(f"pulumi {self.mode} failed ({self.exit_code}):\n{self.error}")
        return self


def _events(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def _is_secret(value: Any) -> bool:
    """An event shows a secret as Pulumi's secret signature with `ciphertext: [secret]`."""
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_MARK


def _secret_paths(value: Any, path: str = "") -> list[str]:
    """Paths of the values an event shows as secret."""
    if _is_secret(value):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items()
                for p in _secret_paths(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _secret_paths(v, f"{path}[{i}]")]
    return []


def _diagnostics(output: str) -> str:
    """What a failed command says: its Diagnostics section, else the end of its output."""
    start = output.find("Diagnostics:")
    return output[start:] if start >= 0 else output[-4000:]


def _declared(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The resources of a preview digest, as the program registered them."""
    found = []
    for step in steps:
        state = step.get("newState") or {}
        if not state or state.get("type") == "pulumi:pulumi:Stack":
            continue
        inputs = {k: v for k, v in (state.get("inputs") or {}).items() if k != "__provider"}
        found.append({
            "urn": state["urn"], "type": state["type"], "custom": bool(state.get("custom")),
            "parent": state.get("parent", ""), "inputs": inputs,
            "secret_inputs": sorted(k for k, v in inputs.items() if v == "[secret]"),
            "protect": bool(state.get("protect")), "deleted_with": state.get("deletedWith"),
            "dependencies": state.get("dependencies") or []})
    return found


def _changed_keys(step: dict[str, Any]) -> list[str]:
    """The inputs a step changes (the engine leaves `diffs` empty for dynamic resources)."""
    old = (step.get("old") or {}).get("inputs") or {}
    new = (step.get("new") or {}).get("inputs") or {}
    return sorted(k for k in set(old) | set(new)
                  if k != "__provider" and old.get(k) != new.get(k))


def _state_of(step: dict[str, Any]) -> dict[str, Any]:
    return step.get("new") or step.get("old") or {}


def deployed_settings(stack: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a test stack deploys: the repository's `Pulumi.<stack>.yaml` (if there
    is one) without its encrypted values, then `config`."""
    merged: dict[str, Any] = {}
    if (REPO / f"Pulumi.{stack}.yaml").exists():
        merged.update({k: v for k, v in read_stack_config(stack, REPO).items()
                       if not isinstance(v, EncryptedValue)})
    merged.update(config)
    return merged


@dataclass
class PulumiStack:
    """One stack deployed through the real CLI; `state_path` names its working directory
    (two objects with the same path are the same stack with the same state)."""

    stack: str
    state_path: Path
    config: dict[str, Any] = field(default_factory=dict)  # settings on top of the stack file
    plain_keys: frozenset[str] = frozenset()  # secret settings to store unencrypted anyway
    policy_pack: Path | None = None  # `--policy-pack` for preview and up (the repo's policy/)
    program: str | None = None  # the text of __main__.py, instead of the repository's

    @property
    def workdir(self) -> Path:
        return self.state_path.with_suffix("")

    @property
    def project_dir(self) -> Path:
        return self.workdir / "project"

    def env(self) -> dict[str, str]:
        """The CLI's environment: a private home and backend, nothing from the network."""
        return {
            **os.environ,
            "PATH": f"{pulumi_bin()}{os.pathsep}{os.environ.get('PATH', '')}",
            "PULUMI_HOME": str(self.workdir / "home"),
            "PULUMI_BACKEND_URL": (self.workdir / "backend").as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_DEBUG_COMMANDS": "true",  # enables --event-log
            "NO_COLOR": "1",
        }

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `pulumi ARGS` in the project directory."""
        self._prepare()
        return self._exec(args, check)

    def _exec(self, args: tuple[str, ...], check: bool = True
              ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["pulumi", *args], cwd=self.project_dir, env=self.env(),
                              capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                              check=False, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise EngineError(f"pulumi {' '.join(args)} failed ({done.returncode}):\n"
                              f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    # --- set-up ------------------------------------------------------------------------------

    def _prepare(self) -> None:
        if not (self.project_dir / "Pulumi.yaml").exists():
            self.project_dir.mkdir(parents=True)
            (self.workdir / "backend").mkdir()
            for name in ("Pulumi.yaml", "__main__.py"):
                shutil.copy(REPO / name, self.project_dir / name)
            (self.project_dir / ".venv").symlink_to(REPO / ".venv")
        if self.program is not None:
            (self.project_dir / "__main__.py").write_text(self.program)
        if not self.stack_file().exists():
            self._exec(("stack", "init", self.stack, "--non-interactive"))

    def stack_file(self) -> Path:
        return self.project_dir / f"Pulumi.{self.stack}.yaml"

    def settings(self) -> dict[str, Any]:
        """The settings this stack deploys (`deployed_settings`)."""
        return deployed_settings(self.stack, self.config)

    def write_config(self) -> None:
        """Make the stack's config exactly `settings()`, secrets encrypted."""
        self._prepare()
        document = yaml.safe_load(self.stack_file().read_text()) or {}
        self.stack_file().write_text(yaml.safe_dump(
            {"encryptionsalt": document["encryptionsalt"]}))
        args: list[str] = []
        for key, value in self.settings().items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            secret = key in SECRET_SETTINGS and key not in self.plain_keys
            flag = "--secret" if secret else "--plaintext"
            args += [flag, f"{PROJECT}:{key}={text}"]
        if args:
            self.cli("config", "set-all", "--stack", self.stack, *args)

    # --- the commands ------------------------------------------------------------------------

    def _run(self, mode: str, *args: str) -> Report:
        self.write_config()
        if self.policy_pack is not None and mode in ("up", "preview"):
            args = (*args, "--policy-pack", str(self.policy_pack))
        log = self.workdir / "events.jsonl"
        log.unlink(missing_ok=True)
        done = self.cli(*args, "--stack", self.stack, "--non-interactive",
                        "--event-log", str(log), check=False)
        output = done.stdout + done.stderr
        error = _diagnostics(output) if done.returncode != 0 else None
        report = self._report(mode, list(_events(log)), output, error, done.returncode)
        if "--json" in args and done.returncode == 0:
            # The preview digest has what the event log lacks: each resource's
            # dependencies, deletedWith, protect and which inputs are secret.
            report.resources = _declared(json.loads(done.stdout).get("steps") or [])
        return report

    def up(self, refresh: bool = True) -> Report:
        report = self._run("up", "up", "--yes", "--skip-preview",
                           f"--refresh={str(refresh).lower()}")
        if report.error is None:
            report.outputs = self.outputs(show_secrets=True)
        return report

    def start_up(self, output: Path) -> subprocess.Popen[bytes]:
        """`pulumi up` as `up()` runs it, started in a process group of its own and not
        waited for, its output into `output`: a test can kill the whole group, as CI
        kills a cancelled job."""
        self.write_config()
        with output.open("wb") as sink:
            return subprocess.Popen(
                ["pulumi", "up", "--yes", "--skip-preview", "--refresh=true", "--stack",
                 self.stack, "--non-interactive"], cwd=self.project_dir, env=self.env(),
                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                start_new_session=True)

    def remove_empty_attributes(self) -> list[Path]:
        """The README's repair for a file backend killed between writing a checkpoint and
        its `.attrs` sidecar: every command then fails with `failed to load checkpoint:
        EOF`. An empty sidecar is removed (a missing one means no attributes)."""
        found = [p for p in (self.workdir / "backend" / ".pulumi").rglob("*.json.attrs")
                 if p.stat().st_size == 0]
        for path in found:
            path.unlink()
        return found

    def cancel(self) -> subprocess.CompletedProcess[str]:
        """`pulumi cancel`: on a file backend, deletes the lock a killed command left."""
        return self.cli("cancel", "--yes", "--stack", self.stack, "--non-interactive")

    def clear_pending_creates(self) -> Report:
        """`pulumi refresh --clear-pending-creates`: forget the creates a killed command
        had started (their objects are adopted or rebuilt by the next `up`)."""
        return self._run("refresh", "refresh", "--yes", "--skip-preview",
                         "--clear-pending-creates")

    def pending_operations(self) -> list[dict[str, Any]]:
        """The operations a killed command left in the state: [{type, urn}]."""
        deployment = self.export().get("deployment", {})
        return [{"type": op["type"], "urn": op["resource"]["urn"]}
                for op in deployment.get("pending_operations") or []]

    def preview(self, refresh: bool = False, digest: bool = True) -> Report:
        """`pulumi preview --json`: the operations, and every resource as declared.
        `digest=False` leaves out `--json`, whose document lacks the policy pack's
        violations (the output then shows them as a terminal does)."""
        return self._run("preview", "preview", *(("--json",) if digest else ()),
                         f"--refresh={str(refresh).lower()}")

    def refresh(self, write: bool = False) -> Report:
        """`pulumi refresh --preview-only` by default: reports drift, writes nothing."""
        flags = ("--yes", "--skip-preview") if write else ("--preview-only",)
        return self._run("refresh", "refresh", *flags)

    def destroy(self, run_program: bool = False) -> Report:
        """`pulumi destroy`; `run_program` hands the providers the current config."""
        return self._run("destroy", "destroy", "--yes", "--skip-preview",
                         *(["--run-program"] if run_program else []))

    def outputs(self, show_secrets: bool = False) -> dict[str, Any]:
        args = ["stack", "output", "--stack", self.stack, "--json"]
        if show_secrets:
            args.append("--show-secrets")
        return dict(json.loads(self.cli(*args).stdout or "{}"))

    def export(self) -> dict[str, Any]:
        """`pulumi stack export`: the deployment as the backend stores it."""
        return dict(json.loads(self.cli("stack", "export", "--stack", self.stack).stdout))

    def state(self) -> dict[str, Any]:
        """urn -> resource of the stack's state; {} once nothing is deployed."""
        if not (self.project_dir / "Pulumi.yaml").exists():
            return {}
        resources = self.export().get("deployment", {}).get("resources") or []
        return {r["urn"]: r for r in resources if r["type"] != "pulumi:pulumi:Stack"}

    # --- reading the event log ---------------------------------------------------------------

    def _report(self, mode: str, events: list[dict[str, Any]], output: str,
                error: str | None, exit_code: int) -> Report:
        steps: dict[str, list[dict[str, Any]]] = {}
        declared: dict[str, dict[str, Any]] = {}
        stack_outputs: dict[str, Any] = {}
        for event in events:
            for kind in ("resourcePreEvent", "resOutputsEvent"):
                if kind not in event:
                    continue
                step = event[kind]["metadata"]
                state = _state_of(step)
                if state.get("type") == "pulumi:pulumi:Stack":
                    if kind == "resOutputsEvent" and step.get("new"):
                        stack_outputs = step["new"].get("outputs") or {}
                    continue
                if kind == "resourcePreEvent" and step.get("new"):
                    new = step["new"]
                    declared[step["urn"]] = {
                        "urn": step["urn"], "type": new.get("type"),
                        "custom": bool(new.get("custom")), "parent": new.get("parent", ""),
                        "inputs": {k: v for k, v in (new.get("inputs") or {}).items()
                                   if k != "__provider"}}
                if (state.get("custom") and step.get("op") not in ("read", "refresh")
                        and not str(state.get("type")).startswith("pulumi:providers:")):
                    steps.setdefault(step["urn"], []).append(step)
        operations, drift = [], []
        for urn, seen in steps.items():
            ops = [s["op"] for s in seen]
            op = "replace" if any(o in REPLACE_OPS for o in ops) else ops[-1]
            keys = _changed_keys(seen[-1])
            operations.append({"urn": urn, "op": op, "keys": keys})
            if mode == "refresh" and op == "update":
                drift.append({"urn": urn, "change": "updated", "keys": keys,
                              "live": (seen[-1].get("new") or {}).get("outputs") or {}})
            elif mode == "refresh" and op == "delete":
                drift.append({"urn": urn, "change": "deleted"})
        return Report(mode, operations if mode != "refresh" else [],
                      stack_outputs, _secret_paths(stack_outputs), drift, error, output,
                      list(declared.values()), exit_code)


def tracked_copy(destination: Path) -> Path:
    """A copy of the repository's tracked files as they are in the work tree: what a fresh
    clone holds, without build leftovers, state or data."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def read_state_file(stack: PulumiStack) -> str:
    """The backend's stored checkpoint of the stack, as text (secrets must be ciphertext)."""
    found = list((stack.workdir / "backend").rglob(f"{stack.stack}.json"))
    return "\n".join(p.read_text() for p in found)
