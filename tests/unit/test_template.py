"""Prompt templating: the ten documented variables, and every other brace left alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bassi_schedd.core.template import VARIABLES, render_prompt, template_values

BERLIN = ZoneInfo("Europe/Berlin")


@dataclass(frozen=True)
class Run:
    started_at: datetime | None
    status: str


def values(last: Run | None = None) -> dict[str, str]:
    when = datetime(2026, 3, 2, 9, 0, tzinfo=BERLIN)  # a Monday, CET (+01:00)
    return template_values("weekly", when, "20260302T080000Z-abc123", last)


def test_every_variable_without_a_previous_run() -> None:
    v = values()
    assert set(v) == set(VARIABLES)
    assert v["date"] == "2026-03-02"
    assert v["time"] == "09:00"
    assert v["timestamp"] == "2026-03-02T09:00:00+01:00"
    assert v["weekday"] == "Monday"
    assert v["task_name"] == "weekly"
    assert v["scheduled_for"] == "2026-03-02T08:00:00+00:00"
    assert v["run_id"] == "20260302T080000Z-abc123"
    assert v["last_run_date"] == "never"
    assert v["last_run_status"] == "never"
    assert v["last_run_success"] == "false"


def test_last_run_date_is_in_the_task_zone() -> None:
    # 23:30 UTC on the 1st is already the 2nd in Berlin.
    v = values(Run(datetime(2026, 3, 1, 23, 30, tzinfo=UTC), "success"))
    assert v["last_run_date"] == "2026-03-02"
    assert v["last_run_status"] == "success"
    assert v["last_run_success"] == "true"


@pytest.mark.parametrize("status", ["failed", "timeout", "interrupted"])
def test_last_run_not_successful(status: str) -> None:
    v = values(Run(datetime(2026, 2, 23, 8, 0, tzinfo=UTC), status))
    assert (v["last_run_status"], v["last_run_success"]) == (status, "false")


def test_last_run_without_start_time_keeps_date_never() -> None:
    v = values(Run(None, "lost"))
    assert (v["last_run_date"], v["last_run_status"]) == ("never", "lost")


def test_naive_scheduled_for_is_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        template_values("x", datetime(2026, 1, 1, 9, 0), "r", None)


def test_render_replaces_documented_variables() -> None:
    text = "Sales up to {date} ({weekday} {time}); last run {last_run_date}: {last_run_status}."
    out = render_prompt(text, values())
    assert out == "Sales up to 2026-03-02 (Monday 09:00); last run never: never."


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "b": [1, 2]}',
        "{unknown} and {Date} and { date } and {date:%Y} and {date!r}",
        "def f(): return {k: v for k, v in d.items()}",
        "{",
        "}{",
        "{{unknown}}",
        "${HOME} %(date)s {0} {}",
        "{{ date }}",
    ],
)
def test_other_braces_are_left_exactly(text: str) -> None:
    assert render_prompt(text, values()) == text


def test_json_next_to_a_variable() -> None:
    text = 'Reply as JSON {"day": "{date}", "n": {"x": 1}}'
    assert render_prompt(text, values()) == 'Reply as JSON {"day": "2026-03-02", "n": {"x": 1}}'


def test_double_braces_escape_a_documented_name() -> None:
    assert render_prompt("literal {{date}}, value {date}", values()) == (
        "literal {date}, value 2026-03-02"
    )


def test_values_are_not_re_expanded() -> None:
    # A task name or status containing braces must not trigger a second substitution.
    out = render_prompt("{task_name}", {"task_name": "{date}", "date": "X"})
    assert out == "{date}"


def test_missing_value_leaves_placeholder() -> None:
    assert render_prompt("{date} {run_id}", {"date": "D"}) == "D {run_id}"
