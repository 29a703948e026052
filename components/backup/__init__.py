"""`python -m components backup` and `restore`: the python profile's data tables into one
file and back, and back from the in-database snapshots (docs/backup.md).

The modules, each with one job: `tables` (which tables, how each is selected and in which
order restored), `catalog` (their live columns and keys), `session` (acting as the service
role), `copystream` (counting binary COPY rows), `manifest` and `archive` (the file),
`destinations` (a local path or an S3 object, written all or nothing), `encryption`
(the AES-256-GCM envelope), `dump` (the backup), `verify`, `load`, `snapshots` and
`upsert` (the restore's checks, landing tables and writes), `bulk` (into an empty
table: the vector index dropped before the writes and built again after) and
`indexprogress` (the build's bar), `restore` (its one transaction), `report` (what is
printed), `command` (arguments and exit codes) and `prune` (`backup-prune`: retention at a
destination).
"""

from components.backup.command import (
    add_backup_arguments,
    add_restore_arguments,
    backup_command,
    restore_command,
)
from components.backup.common import BackupError, RestoreRefused
from components.backup.dump import BackupRequest, BackupResult, run_backup
from components.backup.encryption import Passphrase
from components.backup.prune import PruneResult, add_prune_arguments, prune_command, run_prune
from components.backup.restore import RestoreRequest, RestoreResult, run_restore

__all__ = ["BackupError", "BackupRequest", "BackupResult", "Passphrase", "PruneResult",
           "RestoreRefused", "RestoreRequest", "RestoreResult", "add_backup_arguments",
           "add_prune_arguments", "add_restore_arguments", "backup_command", "prune_command",
           "restore_command", "run_backup", "run_prune", "run_restore"]
