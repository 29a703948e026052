"""`python -m components migrate`: bring memories into a stack from the Mem0 Platform, a
table mem0's `pgvector` provider made, or a `vecs` collection (docs/migration.md).

`records` holds the contract every step shares (`Record`, `Problem`, `Source`,
`Embedder`). The database side (docs/migration-engine.md), each module with one job:
`store` (schema mem0_migration's names, the run rows, the service role's transactions),
`staging` (records into the staging table by binary COPY, embedding what needs it),
`batches` (one batch in one transaction: pre-images, upsert, history marks, checkpoint),
`importer` (validate, dry run, create, stage, apply; resume), `rollback`, `status`,
`verify`, and `command` (arguments, output and exit codes).
"""

from components.migrate.records import (
    Embedder,
    MigrationError,
    Problem,
    Record,
    Source,
    SourceKind,
)

__all__ = ["Embedder", "MigrationError", "Problem", "Record", "Source", "SourceKind"]
