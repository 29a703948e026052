"""The lock timeout of the provider's DDL sessions (`lockTimeout`): its default and check.

A DDL statement that waits for a table lock makes every later query on that table queue
behind it; the timeout bounds that queue, so under live traffic an apply fails (and can
be retried) rather than stalls mem0. The value is a PostgreSQL duration, bounded.
"""

from __future__ import annotations

import re

__all__ = ["LOCK_TIMEOUT", "LOCK_TIMEOUT_ALLOWED", "lock_timeout_ms", "lock_timeout_problem"]

LOCK_TIMEOUT = "10s"  # never queue behind a long transaction holding the table
_DURATION = re.compile(r"^([0-9]{1,7})(ms|s|min)$")
_UNIT_MS = {"ms": 1, "s": 1000, "min": 60_000}
MIN_MS, MAX_MS = 100, 10 * 60_000
LOCK_TIMEOUT_ALLOWED = ("a duration with unit ms, s or min (e.g. 500ms, 10s, 2min) "
                        "from 100ms to 10min")


def lock_timeout_ms(value: str) -> int | None:
    """The duration in milliseconds, or None when it is not one this setting takes."""
    found = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if found is None:
        return None
    ms = int(found.group(1)) * _UNIT_MS[found.group(2)]
    return ms if MIN_MS <= ms <= MAX_MS else None


def lock_timeout_problem(value: object) -> str | None:
    """Why `value` is no lockTimeout, naming the setting and what it allows; None if fine."""
    if isinstance(value, str) and lock_timeout_ms(value) is not None:
        return None
    return f"lockTimeout: {value!r} is not allowed; allowed: {LOCK_TIMEOUT_ALLOWED}"
