"""`restore`: a backup file or an in-database snapshot back into the stack's tables.

Everything happens in ONE transaction as the service role: the file's manifest and
layout are checked against the target, every member lands in a temporary table and is
checked against the manifest, and only then are rows written (upsert, in restore order).
A table with vectors that is empty as the writes begin takes the bulk path (`bulk`): its
vector index is dropped before and built again after, as the table's owner. Any refusal
or error rolls the whole transaction back, so a refused restore changes no row and leaves
every index in place; `--dry-run` runs every statement and rolls back, so its counts are
the real run's.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from components.backup.archive import ArchiveReader, open_archive
from components.backup.bulk import (
    MAINTENANCE_WORK_MEM,
    WritePath,
    drop_vector_indexes,
    rebuild_vector_indexes,
)
from components.backup.catalog import LiveTable, server_facts
from components.backup.common import APPLICATION, BackupError, CommandProgress
from components.backup.encryption import Passphrase
from components.backup.erased import refuse_erased
from components.backup.load import keep_only_user, load_archive
from components.backup.manifest import Manifest, read_manifest
from components.backup.session import act_as_service_role
from components.backup.snapshots import load_snapshot
from components.backup.tables import (
    ENTITIES,
    MEMORIES,
    Part,
    data_parts,
    deployed_tables,
    restore_order,
)
from components.backup.upsert import Outcome, apply
from components.backup.verify import check_dimensions, check_stack, check_tables
from components.connection import database_identity, open_session
from components.settings import Settings


@dataclass(frozen=True)
class RestoreRequest:
    file: Path | str | None = None  # a path or an s3:// URL
    snapshot: int | None = None
    user_id: str | None = None
    dry_run: bool = False
    maintenance_work_mem: str = MAINTENANCE_WORK_MEM  # for the bulk path's index builds
    endpoint_url: str | None = None  # an S3-compatible store's (else AWS_ENDPOINT_URL)
    passphrase: Passphrase | None = None  # for an encrypted backup
    include_erased: bool = False  # restore rows of people `forget` erased (else refused)


@dataclass(frozen=True)
class RestoreResult:
    source: str  # what was restored, in words
    target: str  # host:port/dbname
    session_user: str  # the login role the history trigger records
    outcomes: list[Outcome]
    dry_run: bool
    seconds: float
    writes: list[WritePath]  # how each table with vectors was written: bulk or row by row

    @property
    def path(self) -> str:
        """The path the writes took, in words: `bulk: index rebuilt after load, 12.3 s`,
        `row by row (why)`, or per table when they differ."""
        if not self.writes:
            return "row by row (no vectors to write)"
        if all(w.bulk and not w.note for w in self.writes):
            return (f"bulk: index rebuilt after load, "
                    f"{sum(w.seconds for w in self.writes):.1f} s")
        return "; ".join(f"{w.table}: {w.describe()}" for w in self.writes)


def _from_file(cur: psycopg.Cursor[Any], archive: ArchiveReader, manifest: Manifest,
               settings: Settings, parts: list[Part], targets: dict[str, LiveTable],
               progress: CommandProgress) -> list[Part]:
    source = str(archive.path)
    check_dimensions(manifest.dimensions, targets[settings.collection], settings, source)
    # A column added since the backup (with a default) is left to its default.
    targets.update(check_tables(manifest, targets, server_facts(cur).pgvector_schema,
                                settings, source))
    load_archive(cur, archive, manifest, targets, progress)
    present = {e.table for e in manifest.tables}
    return [p for p in parts if p.table in present]


def run_restore(dsn: str, settings: Settings, request: RestoreRequest,
                progress: CommandProgress) -> RestoreResult:
    started = time.monotonic()
    parts = data_parts(settings)
    with ExitStack() as stack:
        archive = manifest = None
        if request.file is not None:
            # The file is read and its manifest checked before the database is touched.
            archive = stack.enter_context(open_archive(request.file, request.endpoint_url,
                                                       request.passphrase))
            manifest = read_manifest(archive.manifest_bytes(), str(request.file))
            check_stack(manifest, settings, str(request.file))
            source = f"{request.file}: {manifest.describe()}"
        conn = stack.enter_context(open_session(dsn, APPLICATION, BackupError))
        try:
            with conn.transaction(force_rollback=request.dry_run), conn.cursor() as cur:
                session_user = act_as_service_role(cur, settings.service_role, BackupError)
                targets = deployed_tables(cur, parts)
                if archive is not None and manifest is not None:
                    filled = _from_file(cur, archive, manifest, settings, parts, targets,
                                        progress)
                else:
                    assert request.snapshot is not None
                    source, filled = load_snapshot(cur, settings, request.snapshot, parts,
                                                   targets)
                if request.user_id is not None:
                    keep_only_user(cur, filled, request.user_id)
                refuse_erased(cur, filled, request.include_erased)
                loaded = [(p, targets[p.table]) for p in restore_order(filled)]
                writes = drop_vector_indexes(
                    cur, [t for p, t in loaded if p.kind in (MEMORIES, ENTITIES)],
                    settings.service_role, session_user)
                outcomes = apply(cur, loaded, targets[settings.collection], progress)
                rebuild_vector_indexes(cur, writes, settings.service_role,
                                       request.maintenance_work_mem, dsn, progress)
        except psycopg.Error as exc:
            raise BackupError(f"the restore failed and was rolled back, no row changed: "
                              f"{str(exc).strip()}") from exc
    return RestoreResult(source, database_identity(dsn), session_user, outcomes,
                         request.dry_run, time.monotonic() - started, writes)
