"""The freshness rule on given states (the database side: tests/integration/test_freshness.py):
the limit, the exemption before a job's first run, and what a backup file's manifest says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from components.checks import backupfiles
from components.checks.freshness import (
    JobState,
    LastRun,
    SnapshotState,
    snapshot_verdict,
    span,
)
from components.schedule import longest_interval

AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
NAME = "mem0:prod:memories:snapshot"


def snapshots(age: timedelta | None, schedule: str = "0 3 * * *") -> SnapshotState:
    return SnapshotState("mem0_backup.memories_snapshots", schedule, longest_interval(schedule),
                         True, True, "postgres", 0 if age is None else 1,
                         None if age is None else 7, None if age is None else AT - age, age)


def job(ran: bool | None, scheduled: bool = True) -> JobState:
    last = None if ran is None else LastRun(ran, AT, AT, "" if ran else "ERROR:  boom")
    return JobState("snapshot", NAME, "snapshotSchedule", "0 3 * * *", scheduled, last)


@pytest.mark.parametrize(("delta", "words"), [
    (timedelta(0), "0 s"), (timedelta(seconds=59), "59 s"), (timedelta(minutes=2), "2 min"),
    (timedelta(minutes=2, seconds=5), "2 min 5 s"), (timedelta(hours=3, minutes=1), "3 h 1 min"),
    (timedelta(days=2), "2 d"), (timedelta(days=3, hours=2, minutes=59), "3 d 2 h")])
def test_span_says_a_duration_in_the_units_that_matter(delta: timedelta, words: str) -> None:
    assert span(delta) == words


def test_the_limit_is_twice_the_longest_interval() -> None:
    assert snapshot_verdict(snapshots(timedelta(hours=47)), job(True)).fresh
    stale = snapshot_verdict(snapshots(timedelta(hours=49)), job(True))
    assert not stale.fresh
    assert stale.detail.endswith("is 2 d 1 h old: older than the limit of 2 d, twice the "
                                 "longest interval of snapshotSchedule '0 3 * * *' (1 d)")


def test_before_the_jobs_first_run_an_old_or_missing_snapshot_is_reported_not_failed() -> None:
    old = snapshot_verdict(snapshots(timedelta(days=30)), job(None))
    assert old.fresh and f"{NAME} has not run since it was scheduled" in old.detail
    assert snapshot_verdict(snapshots(None), job(None)).fresh
    # no exemption once it ran, when it is not scheduled at all, or when pg_cron is unread
    assert not snapshot_verdict(snapshots(None), job(False)).fresh
    assert snapshot_verdict(snapshots(None), job(True)).detail == (
        f"no snapshot in mem0_backup.memories_snapshots, though job {NAME} ran; the limit of "
        "2 d, twice the longest interval of snapshotSchedule '0 3 * * *' (1 d)")
    assert not snapshot_verdict(snapshots(timedelta(days=30)), job(None, False)).fresh
    assert not snapshot_verdict(snapshots(timedelta(days=30)), None).fresh


def test_a_schedule_that_never_fires_fails() -> None:
    verdict = snapshot_verdict(snapshots(None, "0 0 30 2 *"), job(None))
    assert not verdict.fresh and "never fires" in verdict.detail


def test_a_failed_run_is_described_with_its_error() -> None:
    assert job(False).describe_failure() == (
        f"job {NAME} (snapshotSchedule '0 3 * * *') last ran at 2026-12-06 12:00:00 UTC and "
        "failed: ERROR: boom")


@pytest.mark.parametrize(("encryption", "encrypted"), [
    (None, False), ("none", False), (False, False), ({"method": "none"}, False), ({}, False),
    ("age", True), ({"method": "age", "recipients": 1}, True),
    ({"scheme": "aes-256-gcm"}, True)])
def test_what_a_manifest_says_about_encryption(encryption: object, encrypted: bool) -> None:
    backup = backupfiles.BackupFile(Path("b.tar.gz"), "prod", "full", AT, encryption)
    assert backup.encrypted is encrypted


def test_only_the_stacks_newest_full_backup_counts_for_freshness() -> None:
    def made(name: str, stack: str, kind: str, hours: int) -> backupfiles.BackupFile:
        return backupfiles.BackupFile(Path(name), stack, kind, AT - timedelta(hours=hours),
                                      "age")

    directory = backupfiles.Directory(Path("d"), (
        made("old-full", "prod", "full", 100), made("new-user", "prod", "user", 1),
        made("other", "staging", "full", 1)), ())
    found = backupfiles.findings(directory, "prod", timedelta(hours=48), "the rule", AT)
    assert [(f.code, f.object) for f in found] == [(backupfiles.STALE, "backup file old-full")]
    assert backupfiles.findings(directory, "prod", timedelta(hours=200), "the rule", AT) == []
