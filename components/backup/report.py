"""What backup and restore print when they are done: one table per run, rows per table,
and everything a restore left out, by id."""

from __future__ import annotations

from typing import Any

from components.backup.common import SHOW_IDS
from components.backup.dump import BackupResult
from components.backup.restore import RestoreResult
from components.backup.tables import HISTORY, MEMORIES

# Skipped rows listed one per line; a restore into a database with its own history can
# skip thousands of history rows, which the count reports beyond this.
MAX_SKIPS_SHOWN = 100


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    scaled = size / 1024
    for unit in ("KB", "MB"):
        if scaled < 1024:
            return f"{scaled:.1f} {unit}"
        scaled /= 1024
    return f"{scaled:.1f} GB"


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f} rows/s" if seconds > 0 else "-"


def backup_text(result: BackupResult) -> str:
    m = result.manifest
    width = max(len(e.table) for e in m.tables)
    lines = [m.describe(), f"  {'table'.ljust(width)}  {'rows':>10}  {'bytes':>12}"]
    lines += [f"  {e.table.ljust(width)}  {e.rows:>10}  {e.bytes:>12}" for e in m.tables]
    rows = sum(e.rows for e in m.tables)
    how = (f"encrypted ({result.encryption['algorithm']}, key by "
           f"{result.encryption['kdf']['name']})" if result.encryption else "NOT encrypted")
    lines.append(f"{result.location}: {_size(result.size)}, {how}, {rows} rows in "
                 f"{result.seconds:.2f} s ({_rate(rows, result.seconds)})")
    return "\n".join(lines) + "\n"


def backup_json(result: BackupResult) -> dict[str, Any]:
    m = result.manifest
    encryption = None if result.encryption is None else {
        "algorithm": result.encryption["algorithm"],
        "chunk_bytes": result.encryption["chunk_bytes"],
        "kdf": {k: v for k, v in result.encryption["kdf"].items() if k != "salt"}}
    return {"location": result.location, "encrypted": result.encrypted,
            "encryption": encryption, "kind": m.kind, "stack": m.stack,
            "taken_at": m.taken_at, "user_id": m.user_id,
            "window": {"from": m.since, "to": m.until}, "bytes": result.size,
            "rows": sum(e.rows for e in m.tables), "seconds": round(result.seconds, 3),
            "tables": [{"table": e.table, "rows": e.rows, "bytes": e.bytes}
                       for e in m.tables],
            "warnings": list(result.warnings)}


def _ids(label: str, count: int, ids: list[str]) -> str | None:
    if not count or count > SHOW_IDS:
        return None
    return f"    {label}: {', '.join(ids)}"


def restore_text(result: RestoreResult) -> str:
    width = max([len("table"), *(len(o.table) for o in result.outcomes)])
    lines = [f"restore of {result.source}", f"into {result.target} as the stack's service "
             f"role (login role {result.session_user})",
             f"  {'table'.ljust(width)}  {'in backup':>9}  {'inserted':>8}  {'updated':>7}  "
             f"{'unchanged':>9}  {'skipped':>7}"]
    for o in result.outcomes:
        lines.append(f"  {o.table.ljust(width)}  {o.total:>9}  {o.inserted:>8}  "
                     f"{o.updated:>7}  {o.unchanged:>9}  {len(o.skipped):>7}")
        if result.dry_run:
            lines += [line for line in (_ids("inserted", o.inserted, o.inserted_ids),
                                        _ids("updated", o.updated, o.updated_ids)) if line]
    memories = next((o for o in result.outcomes if o.kind == MEMORIES), None)
    history = next((o for o in result.outcomes if o.kind == HISTORY), None)
    if memories and memories.inserted + memories.updated:
        lines.append(f"the memories' history trigger {'would add' if result.dry_run else 'added'}"
                     f" {memories.inserted + memories.updated} history rows (one 'create' per "
                     "inserted memory, one 'update' per updated one) with login_role "
                     f"{result.session_user}" + ("" if history else "; the history itself "
                                                 "is not restored from a snapshot"))
    lines.append(f"writes: {result.path}")
    for o in result.outcomes:
        for skip in o.skipped[:MAX_SKIPS_SHOWN]:
            lines.append(f"skipped {o.table} {skip.key}: {skip.reason}")
        if len(o.skipped) > MAX_SKIPS_SHOWN:
            lines.append(f"skipped {o.table}: {len(o.skipped) - MAX_SKIPS_SHOWN} more rows "
                         "for the same reasons")
    rows = sum(o.total for o in result.outcomes)
    lines.append(("dry run: rolled back, nothing was changed" if result.dry_run else
                  "committed") + f"; {rows} rows in {result.seconds:.2f} s "
                  f"({_rate(rows, result.seconds)})")
    return "\n".join(lines) + "\n"
