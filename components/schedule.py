"""Cron expressions as pg_cron reads them: checked when settings are read, so a typo names
its setting instead of failing inside the database, and measured (`longest_interval`, the
freshness checks' yardstick). Pure: no I/O.

The accepted grammar is what pg_cron 1.4 (Debian bookworm) and later all parse, the
classic five fields of Vixie cron: minute hour day-of-month month day-of-week, each a
comma-separated list of `*`, `N` or `N-M`, optionally `/STEP`; months and weekdays may be
named (jan..dec, sun..sat); and the macros @hourly, @daily, @midnight, @weekly, @monthly,
@yearly, @annually. pg_cron 1.5's `N seconds` and `$` are left out: older servers reject
them.
"""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

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


# --- how often a schedule fires ------------------------------------------------------------

MACRO_FIELDS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
                "@annually": "0 0 1 1 *"}
# Eight years from a leap year: every day-of-month, month and weekday combination recurs,
# and a 29 February schedule shows its four-year gap.
_SPAN_START = date(2024, 1, 1)
_SPAN_DAYS = 8 * 365 + 2


def _values(part: str, low: int, high: int, names: tuple[str, ...], field: str) -> set[int]:
    values: set[int] = set()
    for item in part.split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            start, end = low, high
        else:
            first, dash, last = span.partition("-")
            start = _number(first, low, high, names, field)
            end = _number(last, low, high, names, field) if dash else \
                (high if step_text else start)
        values.update(range(start, end + 1, step))
    return values


def longest_interval(expression: str) -> timedelta | None:
    """The longest time between two consecutive runs of a valid schedule (UTC, pg_cron's
    clock), or None when it never fires (30 February). Day of month and day of week
    combine as Vixie cron combines them: either matches when both are restricted."""
    text = expression.strip()
    fields = MACRO_FIELDS.get(text.lower(), text).split()
    if schedule_problem(expression) is not None or len(fields) != len(FIELDS):
        raise ValueError(f"not a valid schedule: {expression!r}")
    minutes, hours, days, months, weekdays = (
        _values(part, low, high, names, name)
        for part, (name, low, high, names) in zip(fields, FIELDS, strict=True))
    weekdays = {day % 7 for day in weekdays}  # 7 is Sunday too
    either = not fields[2].startswith("*") and not fields[4].startswith("*")
    times = sorted(hour * 60 + minute for hour in hours for minute in minutes)
    firing = []
    for offset in range(_SPAN_DAYS):
        day = _SPAN_START + timedelta(days=offset)
        by_date, by_weekday = day.day in days, day.isoweekday() % 7 in weekdays
        if day.month in months and ((by_date or by_weekday) if either
                                    else (by_date and by_weekday)):
            firing.append(offset)
    if not firing:
        return None
    longest = max((b - a for a, b in pairwise(times)), default=0)
    overnight = 24 * 60 - times[-1] + times[0]  # the last run of a day to the next day's first
    for a, b in pairwise(firing):
        longest = max(longest, (b - a - 1) * 24 * 60 + overnight)
    if len(firing) == 1:  # once in the whole span: no gap to measure within it
        longest = max(longest, _SPAN_DAYS * 24 * 60)
    return timedelta(minutes=longest)
