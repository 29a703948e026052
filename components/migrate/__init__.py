"""`python -m components migrate`: bring memories into a stack from the Mem0 Platform, a
table mem0's `pgvector` provider made, or a `vecs` collection (docs/migration.md).

`records` holds the contract every step shares (`Record`, `Problem`, `Source`,
`Embedder`).
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
