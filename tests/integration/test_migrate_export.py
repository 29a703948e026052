"""`migrate export --from platform` through mem0ai's own `MemoryClient`, against a local
HTTP server that answers as the Platform's API reference documents
(tests/support/platform_server.py): every memory raw, resumable without duplicates, and
the errors a person meets (a bad key, an unreachable host)."""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.backup.common import CommandProgress
from components.errors import ExitCode
from components.migrate import export
from components.migrate.export import cursor_path, read_exported
from components.migrate.platform import connect
from components.migrate.records import MigrationError
from tests.support.platform_server import PlatformServer, platform_server, synthetic_memories

MEMORIES = synthetic_memories(230)


@pytest.fixture(autouse=True)
def _mem0_dir(tmp_path_factory: pytest.TempPathFactory,
              monkeypatch: pytest.MonkeyPatch) -> None:
    # MemoryClient writes its config into MEM0_DIR; never into the home directory.
    monkeypatch.setenv("MEM0_DIR", str(tmp_path_factory.mktemp("mem0-dir")))
    monkeypatch.setenv("MEM0_TELEMETRY", "False")
    monkeypatch.delenv("MEM0_API_KEY", raising=False)


@pytest.fixture
def server() -> Iterator[PlatformServer]:
    with platform_server([dict(m) for m in MEMORIES]) as running:
        yield running


def run(server_url: str, output: Path, *extra: str, key: str = "m0-test-key") -> int:
    parser = argparse.ArgumentParser()
    export.add_arguments(parser)
    args = parser.parse_args(["--from", "platform", "--api-key", key, "--host", server_url,
                              "--output", str(output), "--page-size", "20", *extra])
    return export.command(args)


def by_id(output: Path) -> dict[str, dict[str, object]]:
    lines = list(read_exported(output))
    found = {str(line["id"]): line for line in lines}
    assert len(found) == len(lines), "a memory was written twice"
    return found


def test_export_writes_every_memory_of_every_entity_raw(server: PlatformServer,
                                                        tmp_path: Path) -> None:
    output = tmp_path / "platform.jsonl"
    assert run(server.url, output) == ExitCode.OK
    # Every memory, as the Platform returned it: expired ones too (show_expired), and the
    # ones listed under a user and an agent (or a run) only once.
    assert by_id(output) == {m["id"]: m for m in MEMORIES}
    assert any(m["expiration_date"] == "2024-01-01" for m in MEMORIES)
    paths = [path for method, path in server.requests if method == "POST"]
    assert paths and all("page_size=20" in p for p in paths)
    assert json.loads(cursor_path(output).read_text())["done"] is True


def test_a_second_run_continues_where_a_failed_page_stopped(server: PlatformServer,
                                                            tmp_path: Path) -> None:
    output = tmp_path / "platform.jsonl"
    server.fail_once.add(("user-1", 2))
    with pytest.raises(MigrationError) as stopped:
        run(server.url, output)
    assert "run the same command again to continue" in str(stopped.value)
    assert stopped.value.exit_code == ExitCode.UNUSABLE
    partial = by_id(output)
    assert 0 < len(partial) < len(MEMORIES)
    asked = len(server.requests)

    assert run(server.url, output) == ExitCode.OK
    again = [p for _, p in server.requests[asked:]]
    # It pinged, then went on from the failed page: no new entity list, no page 1 of user-1.
    assert not any(p.startswith("/v1/entities/") for p in again)
    assert sum("page=1&" in p for p in again) < sum("page=1&" in p for _, p in
                                                    server.requests[:asked])
    assert by_id(output) == {m["id"]: m for m in MEMORIES}
    # A finished export run again writes nothing.
    assert run(server.url, output) == ExitCode.OK
    assert by_id(output) == {m["id"]: m for m in MEMORIES}


def test_a_kill_between_the_write_and_the_cursor_writes_nothing_twice(
        server: PlatformServer, tmp_path: Path) -> None:
    output = tmp_path / "platform.jsonl"
    assert run(server.url, output) == ExitCode.OK
    whole = output.read_bytes()
    # As if killed mid-way: the cursor still points at the second entity's first page,
    # which is in the file already, and the last line was cut short.
    cursor = json.loads(cursor_path(output).read_text())
    cursor.update(entity=1, page=1, done=False)
    cursor_path(output).write_text(json.dumps(cursor))
    lines = whole.splitlines(keepends=True)
    kept = b"".join(lines[:60]) + lines[60][:25]
    output.write_bytes(kept)

    assert run(server.url, output) == ExitCode.OK
    assert by_id(output) == {m["id"]: m for m in MEMORIES}


def test_json_summary_and_the_entity_list_in_the_sdk_shape(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    output = tmp_path / "platform.jsonl"
    with platform_server([dict(m) for m in MEMORIES[:50]], entities_wrapped=True) as server:
        assert run(server.url, output, "--json") == ExitCode.OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["records"] == summary["written"] == 50 and summary["complete"] is True
    assert summary["entities"] == 9 and summary["duplicates"] > 0
    assert sum(summary["per_entity"].values()) == 50


def test_a_bad_key_exits_2_naming_api_key(server: PlatformServer, tmp_path: Path) -> None:
    output = tmp_path / "platform.jsonl"
    with pytest.raises(MigrationError) as refused:
        run(server.url, output, key="m0-wrong")
    assert refused.value.exit_code == ExitCode.UNUSABLE and int(refused.value.exit_code) == 2
    assert "--api-key" in str(refused.value) and "refused the API key" in str(refused.value)
    assert not output.exists()


def test_an_unreachable_host_names_host(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(MigrationError) as unreachable:
        run(f"http://127.0.0.1:{port}", tmp_path / "x.jsonl")
    assert "cannot reach the Platform" in str(unreachable.value)
    assert "--host" in str(unreachable.value)


def test_an_existing_file_that_is_no_export_is_left_alone(server: PlatformServer,
                                                           tmp_path: Path) -> None:
    output = tmp_path / "notes.jsonl"
    output.write_text("mine\n")
    with pytest.raises(MigrationError, match="has no cursor"):
        run(server.url, output)
    assert output.read_text() == "mine\n"


def test_no_key_at_all_names_both_ways_to_give_one(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    export.add_arguments(parser)
    args = parser.parse_args(["--from", "platform", "--output", str(tmp_path / "x.jsonl")])
    with pytest.raises(MigrationError, match="--api-key KEY or set MEM0_API_KEY"):
        export.command(args)


def test_an_export_killed_with_sigkill_continues_without_duplicates(tmp_path: Path) -> None:
    output = tmp_path / "platform.jsonl"
    # The export's own entry points (the `migrate` command wires the same two).
    script = ("import argparse, sys\n"
              "from components.migrate import export\n"
              "parser = argparse.ArgumentParser(); export.add_arguments(parser)\n"
              "sys.exit(export.command(parser.parse_args(sys.argv[1:])))\n")
    with platform_server([dict(m) for m in MEMORIES], page_delay_s=0.1) as server:
        child = subprocess.Popen(
            [sys.executable, "-c", script, "--from", "platform", "--api-key", server.api_key,
             "--host", server.url, "--output", str(output), "--page-size", "20"],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
        try:
            deadline = time.monotonic() + 60
            while not (output.exists() and output.read_bytes().count(b"\n") >= 40):
                assert child.poll() is None, "the export ended before it could be killed"
                assert time.monotonic() < deadline, "the export wrote nothing in 60 s"
                time.sleep(0.02)
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait()
        assert child.returncode == -signal.SIGKILL
        killed_at = len(by_id(output))
        assert 40 <= killed_at < len(MEMORIES)
        server.page_delay_s = 0.0
        assert run(server.url, output) == ExitCode.OK
    assert by_id(output) == {m["id"]: m for m in MEMORIES}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_sees_a_progress_bar_to_the_end(server: PlatformServer,
                                                   tmp_path: Path) -> None:
    screen = Terminal()
    reader = connect(server.api_key, server.url)
    result = export.run_export(reader, tmp_path / "platform.jsonl", 50,
                               CommandProgress(screen, "migrate export"))
    assert result.complete and result.records == len(MEMORIES)
    last = screen.getvalue().rstrip("\n").split("\r")[-1]
    assert last.startswith("[migrate export") and "exporting memories" in last
    assert "100%" in last
