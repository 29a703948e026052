"""What `forget` prints: rows removed per table, as text or as one JSON object. The id
is never printed (the caller has it); the record the database keeps holds only its hash."""

from __future__ import annotations

import json

from components.forget.run import ForgetResult


def forget_text(result: ForgetResult) -> str:
    verb = "would remove" if result.dry_run else "removed"
    width = max((len(t) for t in result.removed), default=0)
    lines = [f"forget {result.kind} on {result.target} (as {result.session_user}): {verb} "
             f"{result.total} rows in {result.seconds:.2f} s"]
    lines += [f"  {table.ljust(width)}  {count:>9}" for table, count in
              sorted(result.removed.items())]
    lines.append("dry run: rolled back, nothing removed and no erasure recorded"
                 if result.dry_run else
                 "an erasure record (kind, time, login role, counts, salted hash of the id) "
                 "was written; restore refuses backups holding this id")
    return "\n".join(lines) + "\n"


def forget_json(result: ForgetResult) -> str:
    return json.dumps({"kind": str(result.kind), "target": result.target,
                       "session_user": result.session_user, "dry_run": result.dry_run,
                       "seconds": round(result.seconds, 3), "removed": result.removed,
                       "total": result.total}, sort_keys=True) + "\n"
