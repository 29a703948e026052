"""TEST FIXTURE, NOT A PULUMI ENGINE: a deploy driver for machines without the Pulumi CLI.

It runs the real `__main__.py` of the project for a stack under Pulumi's mock runtime and,
as each resource is registered, does what the engine's step executor would do with the
real dynamic providers (unpickled from `__provider`, exactly as the engine's plugin does):
check, diff, then create, update, replace or keep, against a real database. Registration
order under the mock runtime follows the program's data and `depends_on` dependencies,
because a resource is registered only once everything it depends on has been applied.
State is kept in a JSON file between runs; resources that the program no longer declares
are deleted in reverse dependency order; `refresh` calls `read` and reports drift the way
`pulumi refresh --preview-only --expect-no-changes` would; `destroy` deletes everything.

What it does not do: no plugins, no policy packs, no parallelism limits, no secrets
encryption (the state file holds plaintext; it lives in a test's temporary directory).
Resources of other providers would need a small SQL equivalent registered in
FOREIGN_APPLIERS; the program declares none today, so any such type is an error.

Each run is a subprocess (`python -m tests.deploy_driver ...`) so that Pulumi's runtime
globals start fresh, as they do in a real program run. `DeployDriver` is the Python API.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import runpy
import subprocess
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROJECT = "mem0infra"
DYNAMIC_PREFIX = "pulumi-python:dynamic"
_SIG = "4dabf18193072939515e22adb298388d"
_SECRET = "1b47061264138c4ac30d75fd1eb44270"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # pulumi.runtime.rpc.UNKNOWN

# type token -> SQL equivalent for resources of other providers (none declared yet).
FOREIGN_APPLIERS: dict[str, Any] = {}


class DriverError(RuntimeError):
    pass


# --- the part that runs inside the subprocess ------------------------------------------------

def _secret_paths(value: Any, path: str = "") -> list[str]:
    """Paths of the values marked secret in a serialized property struct."""
    if isinstance(value, dict):
        if value.get(_SIG) == _SECRET:
            return [path or "."]
        found: list[str] = []
        for key, item in value.items():
            found += _secret_paths(item, f"{path}.{key}" if path else key)
        return found
    if isinstance(value, list):
        found = []
        for i, item in enumerate(value):
            found += _secret_paths(item, f"{path}[{i}]")
        return found
    return []


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(_SIG) == _SECRET:  # secretness is reported separately
            return _jsonable(value.get("value"))
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _load_provider(serialized: str) -> Any:
    import dill

    return dill.loads(base64.b64decode(serialized.encode()))


class _Engine:
    """State, steps and the report of one run."""

    def __init__(self, state: dict[str, Any], mode: str, config: dict[str, str]) -> None:
        self.state = state
        self.mode = mode  # up | preview | destroy
        self.config = config
        self.lock = threading.RLock()
        self.operations: list[dict[str, Any]] = []
        self.registered: list[str] = []
        self.registrations: list[dict[str, Any]] = []
        self.stack_outputs: dict[str, Any] = {}
        self.stack_secret_outputs: list[str] = []
        self.seq = max((r.get("seq", 0) for r in state.values()), default=0)

    def provider(self, serialized: str) -> Any:
        from pulumi.dynamic import ConfigureRequest
        from pulumi.dynamic.config import Config

        provider = _load_provider(serialized)
        provider.configure(ConfigureRequest(Config(dict(self.config), PROJECT)))
        return provider

    def stored_provider(self, entry: dict[str, Any]) -> Any:
        """The provider a state entry was applied with (its outputs keep the pickle)."""
        return self.provider(entry["outputs"].get("__provider") or entry["inputs"]["__provider"])

    def record(self, urn: str, op: str, **extra: Any) -> None:
        self.operations.append({"urn": urn, "op": op, **extra})

    # Called from MockMonitor.RegisterResource for every resource of the program.
    def step(self, urn: str, reg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        with self.lock:
            self.registered.append(urn)
            inputs = {k: v for k, v in reg["inputs"].items() if k != "__provider"}
            self.registrations.append({**reg, "urn": urn, "inputs": inputs})
        if not reg["custom"]:
            with self.lock:
                self._store(urn, reg, "", {})
            return "", {}
        if not reg["type"].startswith(DYNAMIC_PREFIX):
            raise DriverError(f"the deploy driver has no SQL equivalent for {reg['type']}")
        inputs = reg["inputs"]
        provider = self.provider(inputs["__provider"])
        old = self.state.get(urn)
        checked = provider.check(old["inputs"] if old else {}, inputs)
        if checked.failures:
            reasons = "; ".join(f"{f.property}: {f.reason}" for f in checked.failures)
            raise DriverError(f"{urn}: check failed: {reasons}")
        news = checked.inputs
        if old is None:
            self.record(urn, "create")
            if self.mode == "preview":
                # Outputs of a resource not yet created are unknown during a preview.
                return "", {k: (UNKNOWN if v is None else v) for k, v in news.items()}
            result = provider.create(news)
            self._store(urn, reg, result.id, {**news, **(result.outs or {})})
            return result.id, self.state[urn]["outputs"]
        diff = provider.diff(old["id"], old["outputs"], news)
        changed = [k for k in sorted(set(news) | set(old["inputs"]))
                   if k != "__provider" and old["inputs"].get(k) != news.get(k)]
        if diff.replaces:
            if old.get("protect"):
                raise DriverError(f"{urn} is protected and cannot be replaced")
            self.record(urn, "replace", keys=list(diff.replaces))
            if self.mode == "preview":
                return old["id"], news
            old_provider = self.stored_provider(old)
            if diff.delete_before_replace:
                old_provider.delete(old["id"], old["outputs"])
                result = provider.create(news)
            else:
                result = provider.create(news)
                old_provider.delete(old["id"], old["outputs"])
            self._store(urn, reg, result.id, {**news, **(result.outs or {})})
        elif diff.changes:
            self.record(urn, "update", keys=changed)
            if self.mode == "preview":
                return old["id"], news
            result = provider.update(old["id"], old["outputs"], news)
            self._store(urn, reg, old["id"], {**news, **(result.outs or {})})
        else:
            self.record(urn, "same")
            if self.mode != "preview":
                # The engine keeps the old outputs (old __provider included) on "same".
                self._store(urn, reg, old["id"], old["outputs"])
        return old["id"], self.state[urn]["outputs"]

    def _store(self, urn: str, reg: dict[str, Any], id_: str, outputs: dict[str, Any]) -> None:
        if self.mode == "preview":
            return
        previous = self.state.get(urn, {})
        self.seq += 1
        self.state[urn] = {
            "type": reg["type"], "custom": reg["custom"], "id": id_,
            "inputs": reg["inputs"], "outputs": _jsonable(outputs),
            "secret_inputs": reg["secret_inputs"], "parent": reg["parent"],
            "dependencies": reg["dependencies"], "protect": reg["protect"],
            "deleted_with": reg["deleted_with"], "seq": previous.get("seq", self.seq),
        }

    def delete_unregistered(self, keep: set[str]) -> None:
        doomed = [u for u in self.state if u not in keep]
        # Reverse creation order: dependents were stored after what they depend on.
        for urn in sorted(doomed, key=lambda u: self.state[u].get("seq", 0), reverse=True):
            entry = self.state[urn]
            if entry.get("protect"):
                raise DriverError(f"{urn} is protected and cannot be deleted")
            owner = entry.get("deleted_with")
            if owner and owner in doomed:
                self.record(urn, "delete", skipped="deleted_with")
            else:
                self.record(urn, "delete")
                if self.mode != "preview" and entry["custom"]:
                    self.stored_provider(entry).delete(entry["id"], entry["outputs"])
            if self.mode != "preview":
                del self.state[urn]

    def refresh(self, write: bool) -> list[dict[str, Any]]:
        drift: list[dict[str, Any]] = []
        for urn, entry in list(self.state.items()):
            if not entry["custom"]:
                continue
            provider = self.stored_provider(entry)
            result = provider.read(entry["id"], entry["outputs"])
            if result.id is None:
                drift.append({"urn": urn, "change": "deleted"})
                if write:
                    del self.state[urn]
                continue
            outs = {**result.outs, "__provider": entry["outputs"].get("__provider")}
            diff = provider.diff(entry["id"], outs, entry["inputs"])
            if diff.changes:
                keys = [k for k in sorted(result.outs) if k != "__provider"
                        and result.outs.get(k) != entry["outputs"].get(k)]
                drift.append({"urn": urn, "change": "updated", "keys": keys,
                              "live": {k: result.outs[k] for k in keys}})
            if write:
                entry["outputs"] = _jsonable(outs)
                if result.inputs is not None:
                    entry["inputs"] = {**_jsonable(result.inputs),
                                       "__provider": entry["inputs"]["__provider"]}
        return drift


def _install_monitor(engine: _Engine, stack: str, preview: bool) -> None:
    import pulumi
    from google.protobuf import json_format
    from pulumi.runtime import mocks, rpc
    from pulumi.runtime.proto import resource_pb2
    from pulumi.runtime.settings import set_root_resource

    class Monitor(mocks.MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            urn = self.make_urn(request.parent, request.type, request.name)
            if request.type == "pulumi:pulumi:Stack":
                return resource_pb2.RegisterResourceResponse(urn=urn)
            mocks._ensure_event_loop()
            raw = json_format.MessageToDict(request.object)
            reg = {
                "type": request.type, "name": request.name, "custom": bool(request.custom),
                "inputs": _jsonable(rpc.deserialize_properties(request.object)),
                "secret_inputs": _secret_paths(raw), "parent": request.parent,
                "dependencies": list(request.dependencies), "protect": bool(request.protect),
                "deleted_with": request.deletedWith or "",
            }
            id_, state = engine.step(urn, reg)
            obj = mocks._sync_await(rpc.serialize_properties(state, {}))
            self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, id_, state)
            return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=obj)

        def RegisterResourceOutputs(self, request: Any) -> Any:
            if request.urn.split("::")[2] == "pulumi:pulumi:Stack":
                raw = json_format.MessageToDict(request.outputs)
                engine.stack_outputs = _jsonable(rpc.deserialize_properties(request.outputs))
                engine.stack_secret_outputs = _secret_paths(raw)
            return super().RegisterResourceOutputs(request)

    class NoMocks(mocks.Mocks):
        def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
            raise AssertionError("the driver's monitor applies resources itself")

        def call(self, args: Any) -> tuple[dict[str, Any], None]:
            raise DriverError(f"the program invoked {args.token}; the driver has no invokes")

    pulumi.runtime.set_mocks(NoMocks(), project=PROJECT, stack=stack, preview=preview,
                             monitor=Monitor(NoMocks()))
    # set_mocks makes a root stack that is already finished; run_in_stack makes its own,
    # whose exports are registered at the end as in a real program run.
    set_root_resource(None)


def _run_program(project_dir: Path, engine: _Engine, stack: str, secret_keys: list[str]) -> None:
    import pulumi
    from pulumi.runtime.stack import run_in_stack
    from pulumi.runtime.sync_await import _sync_await

    _install_monitor(engine, stack, preview=engine.mode == "preview")
    pulumi.runtime.set_all_config(engine.config, [f"{PROJECT}:{k}" for k in secret_keys])
    main = project_dir / "__main__.py"
    _sync_await(run_in_stack(lambda: runpy.run_path(str(main), run_name="__main__")))


def _subprocess_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["up", "preview", "refresh", "destroy"])
    parser.add_argument("--project-dir", type=Path, required=True)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--config", required=True, help="JSON: namespaced key -> string")
    parser.add_argument("--secret-key", action="append", default=[])
    parser.add_argument("--refresh", action="store_true")
    parser.add_argument("--write", action="store_true", help="refresh: write state")
    args = parser.parse_args(argv)
    state = json.loads(args.state.read_text()) if args.state.exists() else {}
    mode = {"refresh": "preview"}.get(args.mode, args.mode)
    engine = _Engine(state, mode, json.loads(args.config))
    report: dict[str, Any] = {"mode": args.mode, "drift": []}
    os.chdir(args.project_dir)  # the engine runs programs and plugins in the project dir
    try:
        if args.mode == "refresh" or args.refresh:
            report["drift"] = engine.refresh(write=args.write or args.mode != "refresh")
        if args.mode in ("up", "preview"):
            _run_program(args.project_dir, engine, args.stack, args.secret_key)
            engine.delete_unregistered(set(engine.registered))
        elif args.mode == "destroy":
            engine.delete_unregistered(set())
        report["error"] = None
    except BaseException as exc:
        report["error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        report["traceback"] = traceback.format_exc()
    report["operations"] = engine.operations
    report["resources"] = engine.registrations
    report["outputs"] = engine.stack_outputs
    report["secret_outputs"] = engine.stack_secret_outputs
    if engine.mode != "preview" or (args.mode == "refresh" and args.write):
        args.state.write_text(json.dumps(engine.state, indent=1, sort_keys=True))
    print(json.dumps(report))
    return 0


# --- the API the tests use ---------------------------------------------------------------------

@dataclass
class Report:
    mode: str
    operations: list[dict[str, Any]]
    outputs: dict[str, Any]
    secret_outputs: list[str]
    drift: list[dict[str, Any]]
    error: str | None
    traceback: str = ""
    resources: list[dict[str, Any]] = field(default_factory=list)  # as registered

    def ops(self, op: str | None = None) -> dict[str, str]:
        """urn -> operation (or only the urns with `op`), custom resources only."""
        found = {o["urn"]: o["op"] for o in self.operations}
        return {u: o for u, o in found.items() if op is None or o == op}

    def ops_by_type(self, type_suffix: str) -> dict[str, str]:
        return {u: o for u, o in self.ops().items() if u.split("::")[2].endswith(type_suffix)}

    def raise_for_error(self) -> Report:
        if self.error:
            raise DriverError(f"deploy driver run failed: {self.error}\n{self.traceback}")
        return self


@dataclass
class DeployDriver:
    """One stack's deployments against a real database, with state in `state_path`."""

    stack: str
    state_path: Path
    config: dict[str, Any] = field(default_factory=dict)  # settings on top of the stack file
    project_dir: Path = REPO
    secret_keys: tuple[str, ...] = ("databaseUrl", "appRolePassword", "readonlyRolePassword",
                                   "serviceRolePassword", "poolerUrl")

    def _config_strings(self) -> dict[str, str]:
        from components.stackfile import read_stack_config

        merged: dict[str, Any] = dict(read_stack_config(self.stack, self.project_dir))
        merged.update(self.config)
        strings: dict[str, str] = {}
        for key, value in merged.items():
            if type(value).__name__ == "EncryptedValue":
                continue  # a secure value this driver cannot decrypt: the test gives its own
            strings[f"{PROJECT}:{key}"] = (str(value).lower() if isinstance(value, bool)
                                           else str(value))
        return strings

    def _run(self, mode: str, *flags: str) -> Report:
        command = [sys.executable, "-m", "tests.deploy_driver", mode,
                   "--project-dir", str(self.project_dir), "--stack", self.stack,
                   "--state", str(self.state_path),
                   "--config", json.dumps(self._config_strings()), *flags]
        for key in self.secret_keys:
            command += ["--secret-key", key]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900,
                              check=False)
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            raise DriverError(f"driver process failed ({done.returncode}):\n{done.stderr[-4000:]}")
        data = json.loads(lines[-1])
        return Report(data["mode"], data["operations"], data["outputs"],
                      data["secret_outputs"], data["drift"], data["error"],
                      data.get("traceback", ""), data.get("resources", []))

    def up(self, refresh: bool = True) -> Report:
        return self._run("up", *(["--refresh"] if refresh else []))

    def preview(self, refresh: bool = False) -> Report:
        return self._run("preview", *(["--refresh"] if refresh else []))

    def refresh(self, write: bool = False) -> Report:
        """`pulumi refresh --preview-only` by default: reports drift, writes nothing."""
        return self._run("refresh", *(["--write"] if write else []))

    def destroy(self) -> Report:
        return self._run("destroy")

    def state(self) -> dict[str, Any]:
        return json.loads(self.state_path.read_text()) if self.state_path.exists() else {}


if __name__ == "__main__":
    sys.exit(_subprocess_main(sys.argv[1:]))
