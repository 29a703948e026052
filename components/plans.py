"""What an EXPLAIN plan says: the indexes it scans. Shared by the bench's reports and the
validation's planner check, so both read a plan the same way."""

from __future__ import annotations

import re
from collections.abc import Iterable

_INDEX_IN_PLAN = re.compile(r"Index (?:Only )?Scan (?:Backward )?using (\S+)"
                            r"|Bitmap Index Scan on (\S+)")


def indexes_in(plan: Iterable[str]) -> list[str]:
    """The names of the indexes a plan (EXPLAIN's text lines) scans, sorted."""
    return sorted({a or b for line in plan for a, b in _INDEX_IN_PLAN.findall(line)})
