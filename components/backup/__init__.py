"""`python -m components backup` and `restore`: the python profile's data tables into one
file and back, and back from the in-database snapshots (docs/backup.md).

The modules, each with one job: `tables` (which tables, how each is selected and in which
order restored), `catalog` (their live columns and keys), `session` (acting as the service
role), `copystream` (counting binary COPY rows), `manifest` and `archive` (the file),
`dump` (the backup), `verify`, `load`, `snapshots` and `upsert` (the restore's checks,
landing tables and writes), `bulk` (into an empty table: the vector index dropped before
the writes and built again after) and `indexprogress` (the build's bar), `restore` (its
one transaction), `report` (what is printed) and `command` (arguments and exit codes).
"""

from components.backup.command import (
    add_backup_arguments,
    add_restore_arguments,
    backup_command,
    restore_command,
)
from components.backup.common import BackupError, RestoreRefused
from components.backup.dump import BackupRequest, BackupResult, run_backup
from components.backup.restore import RestoreRequest, RestoreResult, run_restore

__all__ = ["BackupError", "BackupRequest", "BackupResult", "RestoreRefused", "RestoreRequest",
           "RestoreResult", "add_backup_arguments", "add_restore_arguments",
           "backup_command", "restore_command", "run_backup", "run_restore"]
