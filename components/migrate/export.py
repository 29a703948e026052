"""`migrate export --from platform`: every memory of every entity on the Mem0 Platform,
raw, one JSON object per line, resumable.

The entity list is read once and kept in a cursor file beside the output
(`FILE.cursor.json`) with the next page to fetch. Each page's records are appended and
flushed to disk before the cursor moves past it, so a run stopped anywhere (an error, a
kill) continues at the page it had not finished: a second run reads the ids already in
the file and writes only the ones it has not, so no record is written twice, also when a
memory belongs to several entities (a user and an agent) and comes back under each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from components.backup.common import CommandProgress
from components.bench.progress import Progress
from components.errors import ExitCode
from components.migrate.platform import (
    DEFAULT_HOST,
    MAX_PAGE_SIZE,
    Entity,
    PlatformReader,
    connect,
)
from components.migrate.records import MigrationError

__all__ = ["CURSOR_SUFFIX", "ExportResult", "add_arguments", "command", "cursor_path",
           "read_exported", "run_export"]

CURSOR_SUFFIX: Final = ".cursor.json"
CURSOR_FORMAT: Final = "mem0infra-platform-export"
DEFAULT_PAGE_SIZE: Final = 100


@dataclass
class ExportResult:
    """What a run did: `records` is the file's total, `written` this run's share."""

    output: str
    host: str
    entities: int
    records: int
    written: int = 0
    duplicates: int = 0
    pages: int = 0
    seconds: float = 0.0
    complete: bool = False
    resumed: bool = False
    per_entity: dict[str, int] = field(default_factory=dict)

    @property
    def records_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def cursor_path(output: Path) -> Path:
    return output.with_name(output.name + CURSOR_SUFFIX)


def _page_size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number from 1 to {MAX_PAGE_SIZE} "
                                         "(the Platform's limit)")
    return size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`export`'s arguments (the `migrate` command wires them)."""
    parser.add_argument("--from", dest="source", choices=["platform"], required=True,
                        help="where to export from: the hosted Mem0 Platform")
    parser.add_argument("--api-key", default=None,
                        help="the Platform API key (default: $MEM0_API_KEY)")
    parser.add_argument("--host", default=None,
                        help=f"the Platform's base URL (default {DEFAULT_HOST})")
    parser.add_argument("--output", "-o", type=Path, required=True,
                        help="the JSON Lines file to write; a second run continues it "
                             f"(progress in FILE{CURSOR_SUFFIX})")
    parser.add_argument("--page-size", type=_page_size, default=DEFAULT_PAGE_SIZE,
                        help=f"memories per request, 1 to {MAX_PAGE_SIZE} "
                             f"(default {DEFAULT_PAGE_SIZE})")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def command(args: argparse.Namespace) -> int:
    """Run the export; exit 0 when every page is in the file."""
    reader = connect(args.api_key, args.host)
    result = run_export(reader, args.output, args.page_size,
                        CommandProgress(sys.stderr, "migrate export"))
    if args.json:
        print(json.dumps({**asdict(result), "records_per_second":
                          round(result.records_per_second, 1)}, indent=2))
    else:
        print(_text(result))
    return ExitCode.OK


def _text(result: ExportResult) -> str:
    state = "continued" if result.resumed else "exported"
    return (f"{state} {result.output}: {result.records} memories of {result.entities} "
            f"entities from {result.host} ({result.written} written by this run, "
            f"{result.duplicates} already in the file or seen under another entity, "
            f"{result.pages} pages) in {result.seconds:.1f}s, "
            f"{result.records_per_second:.0f} records/s")


# --- the cursor ------------------------------------------------------------------------------

def _write_cursor(path: Path, state: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _read_cursor(path: Path, host: str) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MigrationError(f"cannot read the export's cursor {path}: {exc}; delete it and "
                             "the output to start again") from exc
    if not isinstance(state, dict) or state.get("format") != CURSOR_FORMAT:
        raise MigrationError(f"{path} is not an export cursor; move it away")
    if state.get("host") != host:
        raise MigrationError(f"{path} continues an export from {state.get('host')}, not "
                             f"{host}: give that --host or another --output")
    return state


def _ids_in(output: Path) -> set[str]:
    """The ids already written; a last line cut short by a kill is removed."""
    if not output.exists():
        return set()
    seen: set[str] = set()
    with output.open("rb+") as handle:
        data = handle.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            handle.truncate(end)
    for number, line in enumerate(data[:end].splitlines(), start=1):
        try:
            seen.add(str(json.loads(line)["id"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise MigrationError(f"{output} line {number} is not an exported memory "
                                 f"({exc}); it was not written by this export") from exc
    return seen


# --- the run ---------------------------------------------------------------------------------

def _start(reader: PlatformReader, output: Path, cursor: Path,
           page_size: int) -> tuple[dict[str, Any], set[str], bool]:
    if cursor.exists():
        return _read_cursor(cursor, reader.host), _ids_in(output), True
    if output.exists() and output.stat().st_size > 0:
        raise MigrationError(f"--output {output} exists and has no cursor "
                             f"({cursor.name}): it is not an unfinished export; choose "
                             "another file or remove it")
    output.parent.mkdir(parents=True, exist_ok=True)
    entities = reader.entities()
    state = {"format": CURSOR_FORMAT, "version": 1, "host": reader.host,
             "page_size": page_size, "entities": [[e.type, e.name, e.total] for e in entities],
             "entity": 0, "page": 1, "done": False}
    output.touch()
    _write_cursor(cursor, state)
    return state, set(), False


def _entities(state: dict[str, Any]) -> list[Entity]:
    return [Entity(kind, name, total) for kind, name, total in state["entities"]]


def run_export(reader: PlatformReader, output: Path, page_size: int,
               progress: Progress) -> ExportResult:
    """Export every entity's memories into `output`, continuing an unfinished run."""
    started = time.monotonic()
    cursor = cursor_path(output)
    state, seen, resumed = _start(reader, output, cursor, page_size)
    entities = _entities(state)
    result = ExportResult(str(output), reader.host, len(entities), len(seen),
                          resumed=resumed, complete=bool(state["done"]))
    if result.complete:
        return result
    totals = [e.total for e in entities]
    total = sum(t for t in totals if t is not None) if None not in totals else len(seen)
    try:
        with output.open("a", encoding="utf-8") as handle, \
                progress.bar("exporting memories", max(total, len(seen))) as bar:
            bar.advance(sum(t or 0 for t in totals[: state["entity"]]))
            for index in range(state["entity"], len(entities)):
                entity = entities[index]
                first = state["page"] if index == state["entity"] else 1
                for page in reader.pages(entity, first, page_size):
                    fresh = [raw for raw in page.results if str(raw.get("id")) not in seen]
                    for raw in fresh:
                        seen.add(str(raw.get("id")))
                        handle.write(json.dumps(raw, ensure_ascii=False) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                    result.written += len(fresh)
                    result.duplicates += len(page.results) - len(fresh)
                    result.pages += 1
                    result.per_entity[f"{entity.type}:{entity.name}"] = (
                        result.per_entity.get(f"{entity.type}:{entity.name}", 0) + len(fresh))
                    state.update(entity=index, page=page.number + 1)
                    _write_cursor(cursor, state)
                    bar.advance(len(page.results))
                state.update(entity=index + 1, page=1)
                _write_cursor(cursor, state)
    except MigrationError as exc:
        raise MigrationError(f"{exc}; the export stopped with {len(seen)} memories in "
                             f"{output}: run the same command again to continue") from exc
    state["done"] = True
    _write_cursor(cursor, state)
    result.records, result.complete = len(seen), True
    result.seconds = time.monotonic() - started
    return result


def read_exported(output: Path) -> Iterator[dict[str, Any]]:
    """The exported memories in file order (for tests and for a person's checks)."""
    with output.open(encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)
