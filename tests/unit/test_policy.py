"""Pure policy decisions: on time vs missed, on_missed, missed_deadline, jitter, retries."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bassi_schedd.core import policy
from bassi_schedd.core.schedule import Schedule
from bassi_schedd.core.spec import TaskSpec

NOW = datetime(2026, 11, 1, 9, 20, tzinfo=UTC)


def spec(**kw: object) -> TaskSpec:
    base = TaskSpec(
        name="t",
        path=Path("/x/t.toml"),
        schedule=Schedule(text="0 * * * *", kind="cron", cron="0 * * * *"),
        timezone="UTC",
        command=("/bin/true",),
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def hours(*hh: int) -> list[datetime]:
    return [datetime(2026, 11, 1, h, 0, tzinfo=UTC) for h in hh]


def actions(ds: list[policy.Disposition]) -> list[tuple[int, str, str]]:
    return [(d.scheduled_for.hour, d.action, d.trigger) for d in ds]


def test_on_time_within_90_seconds() -> None:
    now = datetime(2026, 11, 1, 9, 1, 30, tzinfo=UTC)
    assert actions(policy.plan(spec(), hours(9), now)) == [(9, "run", "schedule")]
    late = now + timedelta(seconds=1)
    assert actions(policy.plan(spec(), hours(9), late)) == [(9, "run", "catchup")]


@pytest.mark.parametrize(
    ("on_missed", "expected"),
    [
        ("skip", [(h, "missed", "catchup") for h in (6, 7, 8, 9)]),
        (
            "latest",
            [
                (6, "coalesced", "catchup"),
                (7, "coalesced", "catchup"),
                (8, "coalesced", "catchup"),
                (9, "run", "catchup"),
            ],
        ),
        ("all", [(h, "run", "catchup") for h in (6, 7, 8, 9)]),
    ],
)
def test_on_missed(on_missed: str, expected: list[tuple[int, str, str]]) -> None:
    assert actions(policy.plan(spec(on_missed=on_missed), hours(6, 7, 8, 9), NOW)) == expected


def test_latest_folds_missed_times_into_an_on_time_run() -> None:
    now = datetime(2026, 11, 1, 9, 0, 30, tzinfo=UTC)
    got = actions(policy.plan(spec(on_missed="latest"), hours(7, 8, 9), now))
    assert got == [(7, "coalesced", "catchup"), (8, "coalesced", "catchup"), (9, "run", "schedule")]


def test_missed_deadline_skips_older_times() -> None:
    got = actions(policy.plan(spec(missed_deadline_s=5400.0), hours(6, 7, 8, 9), NOW))
    assert got == [
        (6, "missed", "catchup"),
        (7, "missed", "catchup"),
        (8, "coalesced", "catchup"),
        (9, "run", "catchup"),
    ]


def test_all_caps_catchup_at_100_runs_keeping_the_newest() -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    due = [start + timedelta(hours=i) for i in range(130)]
    ds = policy.plan(spec(on_missed="all"), due, start + timedelta(days=30))
    assert [d.action for d in ds] == ["missed"] * 30 + ["run"] * 100
    assert all(d.sequential for d in ds if d.action == "run")


def test_recovered_times_count_as_missed_even_when_recent() -> None:
    now = datetime(2026, 11, 1, 9, 0, 20, tzinfo=UTC)
    got = policy.plan(spec(on_missed="skip"), [], now, recovered=hours(9))
    assert actions(got) == [(9, "missed", "catchup")]
    got = policy.plan(spec(on_missed="latest"), [], now, recovered=hours(9))
    assert actions(got) == [(9, "run", "catchup")]


def test_jitter_is_stable_and_in_range() -> None:
    a = policy.jitter_s(spec(name="alpha", jitter_s=300.0))
    assert a == policy.jitter_s(spec(name="alpha", jitter_s=300.0))
    assert 0 <= a < 300
    assert a != policy.jitter_s(spec(name="beta", jitter_s=300.0))
    assert policy.jitter_s(spec(name="alpha")) == 0.0


def test_retry_delay_doubles_and_caps_at_an_hour() -> None:
    s = spec(retry_delay_s=60.0, retries=10)
    assert [policy.retry_delay_s(s, n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert policy.retry_delay_s(s, 9) == 3600


def test_next_retry_rules() -> None:
    end = NOW
    assert policy.next_retry(spec(retries=0), "failed", 1, 1, end) is None
    assert policy.next_retry(spec(retries=1), "failed", 1, 1, end) == end + timedelta(seconds=60)
    assert policy.next_retry(spec(retries=1), "failed", 1, 2, end) is None
    assert policy.next_retry(spec(retries=1), "timeout", None, 1, end) is not None
    assert policy.next_retry(spec(retries=5), "success", 0, 1, end) is None
    assert policy.next_retry(spec(retries=5), "replaced", None, 1, end) is None
    # exit 75 is retried three times even with retries = 0
    assert [policy.next_retry(spec(), "failed", 75, n, end) is not None for n in (1, 2, 3, 4)] == [
        True,
        True,
        True,
        False,
    ]


def test_repeated_fall_back_hour_keeps_both_real_instants() -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    first = datetime(2026, 10, 25, 2, 0, tzinfo=berlin)  # CEST, 00:00 UTC
    second = datetime(2026, 10, 25, 2, 0, fold=1, tzinfo=berlin)  # CET, 01:00 UTC
    now = datetime(2026, 10, 25, 1, 0, 30, tzinfo=UTC)
    got = policy.plan(spec(on_missed="all"), [first, second], now)
    assert [(d.scheduled_for, d.action) for d in got] == [
        (datetime(2026, 10, 25, 0, 0, tzinfo=UTC), "run"),
        (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), "run"),
    ]
