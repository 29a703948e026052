"""What a restore checks before it loads a single row: that the backup was taken of a
stack like the target (profile, collection, dimensions) and that every table it holds has
exactly the target's written columns. Each refusal names what differs, on both sides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from components.backup.catalog import LiveTable, portable_type
from components.backup.common import BackupError, RestoreRefused
from components.backup.manifest import Manifest
from components.settings import Settings


def check_stack(manifest: Manifest, settings: Settings, source: str) -> None:
    """The backup's stack settings against the target stack's."""
    theirs = manifest.settings
    if theirs["clientProfile"] != settings.client_profile:
        raise RestoreRefused(f"{source} is a backup of clientProfile "
                             f"{theirs['clientProfile']!r}; stack {settings.stack!r} has "
                             f"{settings.client_profile!r}")
    if theirs["collection"] != settings.collection:
        raise RestoreRefused(f"{source} is a backup of collection {theirs['collection']!r}; "
                             f"stack {settings.stack!r} has collection {settings.collection!r}"
                             " (restore into a stack with the same collection)")


def check_dimensions(backup: int | None, memories: LiveTable, settings: Settings,
                     source: str) -> None:
    """The backup's vectors against the target table's vector(N), which must be the
    stack's."""
    live = memories.dimensions()
    if live != settings.dimensions:
        raise BackupError(f"the target's {memories.qualified} is vector({live}), but stack "
                          f"{settings.stack!r} says dimensions {settings.dimensions}: is "
                          "--dsn the stack's database, and is the stack deployed?")
    if backup != live:
        raise RestoreRefused(
            f"{source} holds vectors of {backup} dimensions, but the target's "
            f"{memories.qualified} is vector({live}) (stack {settings.stack!r}: dimensions "
            f"{settings.dimensions}); vectors of one size cannot be restored into the other: "
            "restore into a stack with the backup's dimensions, or re-embed")


def column_problems(table: LiveTable, columns: Sequence[Sequence[str]],
                    vector_schema: str | None, target_vector_schema: str | None,
                    source: str, fill: bool = False) -> list[str]:
    """How `columns` (the backup's [name, type] pairs) differ from the target table's
    written columns: names, types (pgvector's schema aside) and order. With `fill`, a
    target column the backup lacks is no problem where a row can do without it."""
    theirs = {name: portable_type(type_, vector_schema) for name, type_ in columns}
    ours = {c.name: portable_type(c.type, target_vector_schema) for c in table.columns}
    problems = [f"{table.qualified}: column {name} ({type_}) is in {source} but not in the "
                "target" for name, type_ in theirs.items() if name not in ours]
    fillable = {c.name for c in table.columns if c.fillable and fill}
    problems += [f"{table.qualified}: column {name} ({type_}) of the target is not in "
                 f"{source}" + (" (and it is NOT NULL with no default)" if fill else "")
                 for name, type_ in ours.items() if name not in theirs and name not in fillable]
    problems += [f"{table.qualified}: column {name} is {theirs[name]} in {source}, "
                 f"{type_} in the target" for name, type_ in ours.items()
                 if name in theirs and theirs[name] != type_]
    if not problems and list(theirs) != [name for name in ours if name in theirs]:
        problems.append(f"{table.qualified}: the columns are in another order in {source} "
                        f"({', '.join(theirs)}) than in the target ({', '.join(ours)})")
    return problems


def check_layout(problems: list[str], source: str) -> None:
    if problems:
        raise RestoreRefused(
            f"{source} has another layout than the target, so its rows cannot be restored "
            "here (a backup restores into a deployment of the same schema version):\n  "
            + "\n  ".join(problems))


def check_tables(manifest: Manifest, targets: Mapping[str, LiveTable],
                 vector_schema: str | None, settings: Settings, source: str
                 ) -> dict[str, LiveTable]:
    """Every table of the backup exists in the target with the same columns, but for
    columns added since that a row can do without (a default, or NULL); returns each
    table as the restore writes it: the backup's columns only."""
    problems = []
    written: dict[str, LiveTable] = {}
    for entry in manifest.tables:
        table = targets.get(entry.table)
        if table is None:
            problems.append(f"public.{entry.table} is in {source} but stack "
                            f"{settings.stack!r} has no such table (tenancy "
                            f"{settings.tenancy!r}; the backup's: "
                            f"{manifest.settings['tenancy']!r})")
            continue
        problems += column_problems(table, entry.columns, manifest.pgvector_schema,
                                    vector_schema, source, fill=True)
        written[entry.table] = table.only([name for name, _type in entry.columns])
    check_layout(problems, source)
    return written

