"""Cron expressions are checked when settings are read: a bad one names its key."""

from __future__ import annotations

from datetime import timedelta

import pytest

from components.model import build_model, cron_job_ddl, job_setting, parse_cron_job_ddl
from components.schedule import longest_interval, schedule_problem
from components.settings import SETTINGS, SettingsError, parse_settings

# What pg_cron 1.4 takes (tests/integration/test_jobs.py schedules each one for real).
VALID = ("* * * * *", "0 3 * * *", "*/15 1-5/2 1,15 * *", "0 3 * * mon-fri",
         "0 3 * JAN-mar 7", "0 0 * * 0-7", "59 23 31 12 6", "@hourly", "@daily",
         "@midnight", "@weekly", "@monthly", "@yearly", "@annually", "  0  3 * * *  ")
INVALID = {
    "0 3 * *": "it has 4 fields, not 5",
    "0 3 * * * *": "it has 6 fields, not 5",
    "": "it has 0 fields, not 5",
    "60 * * * *": "minute 60 is outside 0..59",
    "* 24 * * *": "hour 24 is outside 0..23",
    "* * 0 * *": "day of month 0 is outside 1..31",
    "* * * 13 *": "month 13 is outside 1..12",
    "* * * * 8": "day of week 8 is outside 0..7",
    "*/0 * * * *": "minute step '0' is not a positive number",
    "5/2 * * * *": "minute '5/2': a step needs * or a range before it",
    "5-1 * * * *": "minute range '5-1' runs backwards",
    "x * * * *": "minute 'x' is not a number",
    "* * * foo *": "month 'foo' is not a number or a name (jan..dec)",
    "1,,2 * * * *": "minute '1,,2' has an empty list item",
    "@reboot": "'@reboot' is not one of the macros allowed",
    "5 seconds": "it has 2 fields, not 5",
    "0 0 $ * *": "day of month '$' is not a number",
}
CRON_KEYS = [s.key for s in SETTINGS if s.cron]


@pytest.mark.parametrize("expression", VALID)
def test_valid_schedules_pass(expression: str) -> None:
    assert schedule_problem(expression) is None


@pytest.mark.parametrize(("expression", "why"), INVALID.items())
def test_invalid_schedules_say_why(expression: str, why: str) -> None:
    assert schedule_problem(expression) == why


@pytest.mark.parametrize("key", CRON_KEYS)
def test_a_bad_schedule_names_its_setting_and_what_is_allowed(key: str) -> None:
    with pytest.raises(SettingsError) as error:
        parse_settings({key: "61 * * * *"}, "dev")
    [problem] = error.value.problems
    assert problem.startswith(f"{key}: '61 * * * *' is not allowed (minute 61 is outside "
                              "0..59); allowed: five fields 'minute hour day-of-month month "
                              "day-of-week'")
    assert problem.endswith("or empty for no job")


def test_every_job_setting_has_its_job() -> None:
    assert sorted(CRON_KEYS) == sorted(set(map(job_setting, (
        "mem0:s:c:snapshot", "mem0:s:c:expired-purge", "mem0:s:c:session-cleanup",
        "mem0:s:c:history-retention", "mem0:s:c:analyze"))))


def test_jobs_serve_the_python_profile_only() -> None:
    with pytest.raises(SettingsError) as error:
        parse_settings({"clientProfile": "typescript", "analyzeSchedule": "@daily"}, "dev")
    assert error.value.problems == [
        "analyzeSchedule: not allowed with clientProfile 'typescript'; allowed: empty (the "
        "jobs keep the python profile's tables)"]


def test_no_schedule_no_job_and_each_schedule_its_job() -> None:
    assert not [s for s in build_model(parse_settings({}, "dev")) if s.kind == "cron_job"]
    settings = parse_settings({"snapshotSchedule": "0 3 * * *", "snapshotRetentionDays": 3,
                               "sessionCleanupSchedule": "@hourly", "sessionMaxAgeHours": 6,
                               "collection": "notes"}, "prod")
    jobs = {s.name: s for s in build_model(settings) if s.kind == "cron_job"}
    assert set(jobs) == {"mem0:prod:notes:snapshot", "mem0:prod:notes:session-cleanup"}
    name, schedule, command = parse_cron_job_ddl(jobs["mem0:prod:notes:snapshot"].ddl)
    assert (schedule, command) == ("0 3 * * *",
                                   "SELECT mem0_backup.take_snapshot('3 days'::interval)")
    assert "function:mem0_backup.take_snapshot" in jobs[name].depends_on
    session = parse_cron_job_ddl(jobs["mem0:prod:notes:session-cleanup"].ddl)[2]
    assert "HAVING max(updated_at) < now() - '6 hours'::interval" in session
    assert "DELETE FROM public.notes WHERE run_id IN" in session


@pytest.mark.parametrize("command", ["SELECT 1", "DELETE FROM t WHERE a = 'it''s'",
                                     "SELECT $job$x$job$", "two\nlines"])
def test_job_text_round_trips(command: str) -> None:
    text = cron_job_ddl("mem0:s:c:j'", "@daily", command)
    assert parse_cron_job_ddl(text) == ("mem0:s:c:j'", "@daily", command)


def test_render_prints_each_job_with_where_it_runs() -> None:
    from components.render import render_script

    script = render_script(parse_settings({"analyzeSchedule": "0 4 * * *"}, "dev"))
    assert ("-- run in pg_cron's database (cron.database_name); from another database, call\n"
            "-- cron.schedule_in_database(name, schedule, command, '<this database>') instead\n"
            "SELECT cron.schedule('mem0:dev:memories:analyze', '0 4 * * *', $job$ANALYZE "
            "public.memories, public.memories_entities, public.memory_history, "
            "public.memory_relationships$job$);") in script


# The longest time between two runs: what the freshness check doubles (hours, minutes).
INTERVALS = {
    "* * * * *": timedelta(minutes=1), "*/15 * * * *": timedelta(minutes=15),
    "5,10 * * * *": timedelta(minutes=55), "0 */5 * * *": timedelta(hours=5),
    "0 3 * * *": timedelta(days=1), "@daily": timedelta(days=1), "@hourly": timedelta(hours=1),
    "@weekly": timedelta(days=7), "0 0 * * 7": timedelta(days=7),
    # Friday 17:00 to Monday 09:00
    "0 9-17 * * mon-fri": timedelta(days=2, hours=16),
    # both day fields restricted: either matches, so Mondays fill the month's gaps
    "0 0 1,15 * 1": timedelta(days=7),
    "@monthly": timedelta(days=31), "0 0 31 * *": timedelta(days=61),  # 31 May to 31 July
    "@yearly": timedelta(days=366), "0 0 29 2 *": timedelta(days=4 * 365 + 1),
}


@pytest.mark.parametrize(("expression", "interval"), INTERVALS.items())
def test_the_longest_interval_of_a_schedule(expression: str, interval: timedelta) -> None:
    assert longest_interval(expression) == interval


def test_a_schedule_that_never_fires_has_no_interval_and_a_bad_one_is_refused() -> None:
    assert longest_interval("0 0 30 2 *") is None
    with pytest.raises(ValueError, match="not a valid schedule"):
        longest_interval("61 * * * *")
