"""Cron expressions as pg_cron reads them: checked when settings are read, so a typo names
its setting instead of failing inside the database. Pure: no I/O.

The accepted grammar is what pg_cron 1.4 (Debian bookworm) and later all parse, the
classic five fields of Vixie cron: minute hour day-of-month month day-of-week, each a
comma-separated list of `*`, `N` or `N-M`, optionally `/STEP`; months and weekdays may be
named (jan..dec, sun..sat); and the macros @hourly, @daily, @midnight, @weekly, @monthly,
@yearly, @annually. pg_cron 1.5's `N seconds` and `$` are left out: older servers reject
them.
"""

from __future__ import annotations

MACROS = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (field name, lowest, highest, names numbered from `lowest`)
FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, WEEKDAYS),  # 0 and 7 are both Sunday
)
ALLOWED = ("five fields 'minute hour day-of-month month day-of-week' (each *, N, N-M, "
           "a comma list of those, optionally /STEP; months jan-dec and weekdays sun-sat "
           f"by name), or one of {', '.join(MACROS)}")


def _number(text: str, low: int, high: int, names: tuple[str, ...], field: str) -> int:
    lowered = text.lower()
    if lowered in names:
        return low + names.index(lowered)
    if not text.isdigit():
        raise ValueError(f"{field} {text!r} is not a number"
                         + (f" or a name ({names[0]}..{names[-1]})" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{field} {value} is outside {low}..{high}")
    return value


def _item(item: str, low: int, high: int, names: tuple[str, ...], field: str) -> None:
    span, _, step = item.partition("/")
    if "/" in item:
        if not step.isdigit() or int(step) == 0:
            raise ValueError(f"{field} step {step!r} is not a positive number")
    if span == "*":
        return
    first, dash, last = span.partition("-")
    start = _number(first, low, high, names, field)
    if dash:
        end = _number(last, low, high, names, field)
        if end < start:
            raise ValueError(f"{field} range {span!r} runs backwards")
    elif step:
        raise ValueError(f"{field} {item!r}: a step needs * or a range before it")


def schedule_problem(expression: str) -> str | None:
    """Why pg_cron would not take `expression`, or None when it is a valid schedule."""
    text = expression.strip()
    if text.startswith("@"):
        return None if text.lower() in MACROS else f"{text!r} is not one of the macros allowed"
    parts = text.split()
    if len(parts) != len(FIELDS):
        return f"it has {len(parts)} fields, not {len(FIELDS)}"
    for part, (field, low, high, names) in zip(parts, FIELDS, strict=True):
        for item in part.split(","):
            if not item:
                return f"{field} {part!r} has an empty list item"
            try:
                _item(item, low, high, names, field)
            except ValueError as exc:
                return str(exc)
    return None
