"""SPEC 10 in process: spend-cap arithmetic, config errors, templates, the gate, notify events."""

from __future__ import annotations

import os
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil
import pytest

from bassi_schedd.config.paths import Home
from bassi_schedd.config.settings import config_from_dict
from bassi_schedd.config.taskfile import task_from_text
from bassi_schedd.config.tomlfile import FieldError
from bassi_schedd.core.budget import Spent, decide, periods
from bassi_schedd.core.errors import TaskFileError
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.core.spec import BudgetSpec, DaemonConfig
from bassi_schedd.core.template import clip_last_result, render_prompt, template_values
from bassi_schedd.notify.record import end_event
from bassi_schedd.ops.cost import cost_json, group_costs
from bassi_schedd.runner.gate import gate_outcome, run_gate
from bassi_schedd.runner.previous import last_result

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")

# -- budget arithmetic ---------------------------------------------------------------------------


def test_periods_start_at_local_midnight_in_each_zone() -> None:
    now = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)  # 01:30 on Dec 1 in Berlin
    p = periods(now, BERLIN, UTC_ZONE)
    assert p.task_day == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert p.task_month == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert p.all_day == p.all_month == datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        periods(datetime(2026, 12, 1), BERLIN, UTC_ZONE)


def test_a_cap_is_spent_at_or_over_it_and_otherwise_lowers_the_run_limit() -> None:
    caps = BudgetSpec(daily_usd=1.0, monthly_usd=20.0)
    none = BudgetSpec()
    assert decide(caps, none, Spent(0.4, 0.4, 0, 0), None).max_budget_usd == pytest.approx(0.6)
    assert decide(caps, none, Spent(0.4, 19.9, 0, 0), 2.0).max_budget_usd == pytest.approx(0.1)
    assert decide(caps, none, Spent(0.0, 0.0, 0, 0), 0.25).max_budget_usd == 0.25
    at = decide(caps, none, Spent(1.0, 1.0, 0, 0), 2.0)
    assert at.max_budget_usd is None
    assert at.exceeded == "the task's budget.daily_usd of $1.00 is spent ($1.00 today)"
    overall = decide(none, BudgetSpec(monthly_usd=5.0), Spent(0, 0, 1.0, 5.5), None)
    assert (
        overall.exceeded == "schedd.toml's budget.monthly_usd of $5.00 is spent ($5.50 this month)"
    )
    assert decide(none, none, Spent(99, 99, 99, 99), None) == decide(none, none, Spent(), None)
    zero = decide(BudgetSpec(daily_usd=0.0), none, Spent(), None)
    assert zero.exceeded is not None  # a cap of 0 stops agent runs


# -- configuration -------------------------------------------------------------------------------

CONFIG = DaemonConfig(timezone="UTC")


def load(home: Home, body: str) -> object:
    path = home.tasks_dir / "t.toml"
    return task_from_text(path, textwrap.dedent(body).lstrip(), CONFIG)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'prompt = "p"\n[budget]\ndaily_usd = -1\n',
            "t.toml:4: key 'budget.daily_usd': must be a number between 0 and 1000000, got -1",
        ),
        (
            'prompt = "p"\n[budget]\nmonthly_usd = "5"\n',
            "key 'budget.monthly_usd': must be a number, got a string ('5')",
        ),
        ('prompt = "p"\n[budget]\nweekly_usd = 5\n', "key 'budget.weekly_usd': unknown key"),
        ('prompt = "p"\nwhen = []\n', "t.toml:3: key 'when': must not be an empty list"),
        (
            'prompt = "p"\nwhen = "~/bin/check.sh"\n',
            "key 'when': must be a list of strings, got a string",
        ),
        (
            'prompt = "p"\nwhen = ["a"]\nwhen_timeout = "0s"\n',
            "key 'when_timeout': must be between 1s and 1d",
        ),
        (
            'command = ["/bin/true"]\n[agent]\ncontinue_session = true\n',
            "key 'agent.continue_session': applies to agent tasks only",
        ),
        (
            'prompt = "p"\n[agent]\ncontinue_session = "yes"\n',
            "key 'agent.continue_session': must be true or false",
        ),
    ],
)
def test_bad_values_are_one_sentence_naming_file_and_key(
    home: Home, body: str, message: str
) -> None:
    with pytest.raises(TaskFileError) as e:
        load(home, 'schedule = "@daily"\n' + body)
    text = str(e.value)
    assert message in text and str(home.tasks_dir / "t.toml") in text and "\n" not in text


def test_good_values_load_into_the_spec(home: Home) -> None:
    spec = load(
        home,
        """
        schedule = "@daily"
        prompt = "p"
        when = ["~/bin/check.sh", "--quick"]
        when_timeout = "30s"
        [budget]
        daily_usd = 1.5
        monthly_usd = 0
        [agent]
        continue_session = true
        """,
    )
    assert spec.when == (os.path.expanduser("~/bin/check.sh"), "--quick")  # type: ignore[attr-defined]
    assert spec.when_timeout_s == 30.0  # type: ignore[attr-defined]
    assert spec.budget == BudgetSpec(daily_usd=1.5, monthly_usd=0.0)  # type: ignore[attr-defined]
    assert spec.agent.continue_session is True  # type: ignore[attr-defined]


def test_schedd_toml_takes_a_budget_over_all_tasks() -> None:
    assert config_from_dict({"budget": {"monthly_usd": 50}}).budget == BudgetSpec(monthly_usd=50.0)
    with pytest.raises(FieldError) as e:
        config_from_dict({"budget": {"daily_usd": float("nan")}})
    assert e.value.key == "budget.daily_usd"


# -- templates and the previous result -----------------------------------------------------------


def test_last_result_is_cut_at_the_start_with_a_mark() -> None:
    assert clip_last_result("short\n", command=False) == "short\n"
    long = "".join(f"line {i}\n" for i in range(5000))
    clipped = clip_last_result(long, command=False)
    assert clipped.startswith("[...]\nline ") and clipped.endswith("line 4999\n")
    assert len(clipped.encode()) <= 20 * 1024
    lines = clip_last_result("".join(f"{i}\n" for i in range(300)), command=True)
    assert lines.splitlines()[:2] == ["[...]", "100"] and lines.endswith("299\n")


def test_when_output_is_kept_for_the_child_and_other_variables_rendered() -> None:
    values = template_values("t", datetime(2026, 12, 6, tzinfo=UTC), "r", None, "before")
    text = "{last_result} {when_output} {{when_output}} {{date}}"
    first = render_prompt(text, values, keep=("when_output",))
    assert first == "before {when_output} {{when_output}} {date}"
    others = tuple(k for k in values if k != "when_output")
    second = render_prompt(first, {"when_output": "NEW"}, keep=others)
    assert second == "before NEW {when_output} {date}"


def test_last_result_reads_result_md_or_a_commands_output_log(tmp_path: Path) -> None:
    (tmp_path / "result.md").write_text("the summary")
    (tmp_path / "output.log").write_text("".join(f"{i}\n" for i in range(250)))
    assert last_result(tmp_path, True) == "the summary"
    assert last_result(tmp_path, False).splitlines()[1] == "50"
    assert last_result(None, True) == "" and last_result(tmp_path / "gone", True) == ""


# -- the gate ------------------------------------------------------------------------------------


def gate(tmp_path: Path, script: str, timeout_s: float = 10.0) -> tuple[object, str]:
    env = {"PATH": os.defpath, "HOME": str(tmp_path)}
    return run_gate(["/bin/sh", "-c", script], env, tmp_path, tmp_path / "when.log", timeout_s)


def test_gate_exit_codes_give_go_skip_or_fail(tmp_path: Path) -> None:
    verdict, out = gate(tmp_path, "echo hello; echo err >&2")
    assert verdict.go and out == "hello\n"  # type: ignore[attr-defined]
    assert (tmp_path / "when.log").stat().st_mode & 0o777 == 0o600
    assert sorted((tmp_path / "when.log").read_text().split()) == ["err", "hello"]
    assert gate(tmp_path, "exit 1")[0].verdict == "skip"  # type: ignore[attr-defined]
    failed = gate(tmp_path, "exit 3")[0]
    assert (failed.verdict, failed.exit_code) == ("fail", 3)  # type: ignore[attr-defined]
    assert "killed by SIGKILL" in str(gate(tmp_path, "kill -9 $$")[0].reason)  # type: ignore[attr-defined]
    big, out = gate(tmp_path, "head -c 50000 /dev/zero | tr '\\0' x")
    assert big.go and out.startswith("[...]\n") and len(out) <= 10 * 1024  # type: ignore[attr-defined]


def test_a_missing_gate_program_fails_with_a_sentence(tmp_path: Path) -> None:
    env = {"PATH": os.defpath}
    verdict, _ = run_gate([str(tmp_path / "nope")], env, tmp_path, tmp_path / "when.log", 5)
    assert verdict.verdict == "fail" and "was not found" in str(verdict.reason)
    assert "was not found" in (tmp_path / "when.log").read_text()


def test_a_hanging_gate_and_its_children_are_killed_at_the_timeout(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    start = time.monotonic()
    verdict, _ = gate(tmp_path, f"trap '' TERM; sleep 300 & echo $! > {pidfile}; wait", 0.5)
    assert verdict.verdict == "fail" and "when_timeout" in str(verdict.reason)  # type: ignore[attr-defined]
    assert time.monotonic() - start < 8
    child = int(pidfile.read_text())
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


def test_the_daemon_reads_the_verdict_from_the_run_folder(tmp_path: Path) -> None:
    (tmp_path / "gate.json").write_text('{"verdict": "skip", "exit_code": 1, "reason": "r"}')
    assert gate_outcome(tmp_path, RunStatus.FAILED, 1) == (RunStatus.SKIPPED_CONDITION, 1, "r")
    assert gate_outcome(tmp_path, RunStatus.TIMEOUT, None) == (RunStatus.TIMEOUT, None, None)
    (tmp_path / "gate.json").write_text('{"verdict": "fail", "exit_code": 3, "reason": "x"}')
    assert gate_outcome(tmp_path, RunStatus.FAILED, 1) == (RunStatus.FAILED, 3, "x")
    (tmp_path / "gate.json").write_text('{"verdict": "go", "exit_code": 0}')
    assert gate_outcome(tmp_path, RunStatus.FAILED, 2) == (RunStatus.FAILED, 2, None)
    (tmp_path / "gate.json").write_text("not json")
    assert gate_outcome(tmp_path, RunStatus.FAILED, 2) == (RunStatus.FAILED, 2, None)


# -- notify and cost -----------------------------------------------------------------------------


def test_changed_is_raised_by_a_success_with_a_new_result() -> None:
    assert end_event(RunStatus.SUCCESS, True, ["changed"], changed=True) == "changed"
    assert end_event(RunStatus.SUCCESS, True, ["changed"], changed=False) is None
    assert end_event(RunStatus.SUCCESS, True, ["changed", "success"], changed=True) == "changed"
    assert (
        end_event(RunStatus.SUCCESS, False, ["changed", "recovered"], changed=True) == "recovered"
    )
    assert end_event(RunStatus.FAILED, True, ["changed"], changed=True) is None


def test_cost_groups_by_task_day_and_month_sorted_by_key() -> None:
    t = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    rows = [
        ("b", t, 0.5, 10, 1),
        ("a", t, None, None, None),
        ("b", datetime(2026, 12, 2, tzinfo=UTC), 0.25, 5, 2),
    ]
    by_task = cost_json(group_costs(rows, "task", UTC_ZONE))
    assert by_task == {
        "rows": [
            {"key": "a", "runs": 1, "cost_usd": 0.0, "input_tokens": 0, "output_tokens": 0},
            {"key": "b", "runs": 2, "cost_usd": 0.75, "input_tokens": 15, "output_tokens": 3},
        ],
        "total_usd": 0.75,
    }
    assert [g.key for g in group_costs(rows, "day", BERLIN)] == ["2026-12-01", "2026-12-02"]
    assert [g.key for g in group_costs(rows, "month", UTC_ZONE)] == ["2026-11", "2026-12"]


def test_spend_from_slots_and_days_equals_summing_every_run(tmp_path: Path) -> None:
    """The store's slot-and-day sums agree with a plain sum over the runs, in zones a quarter or
    half an hour off UTC, across DST and month ends."""
    import random
    from datetime import timedelta

    from bassi_schedd.store.state import StateDB

    rng = random.Random(10)
    db = StateDB.open(tmp_path / "state.db")
    base = datetime(2026, 9, 20, tzinfo=UTC)
    runs: list[tuple[str, datetime, float]] = []
    try:
        for i in range(400):
            task = rng.choice(("a", "b"))
            started = base + timedelta(seconds=rng.uniform(0, 70 * 86400))
            cost = round(rng.uniform(0, 1), 4)
            run_id = db.start_manual_run(task, f"r{i}", lambda r: r, 1, None, started)
            row = db.get_run(run_id)
            assert row is not None
            with db.tx() as tx:
                tx.record_end(row, RunStatus.SUCCESS, 0, started, cost_usd=cost)
            runs.append((task, started, cost))
        zones = ("Asia/Kathmandu", "Australia/Eucla", "America/St_Johns", "Europe/Berlin", "UTC")
        for _ in range(60):
            now = base + timedelta(seconds=rng.uniform(0, 72 * 86400))
            zone, daemon_zone = ZoneInfo(rng.choice(zones)), ZoneInfo(rng.choice(zones))
            p = periods(now, zone, daemon_zone)
            got = db.spend("a", p, now)

            def total(since: datetime, task: str | None, now: datetime = now) -> float:
                return sum(c for t, s, c in runs if s >= since and (task is None or t == task))

            want = (
                total(p.task_day, "a"),
                total(p.task_month, "a"),
                total(p.all_day, None),
                total(p.all_month, None),
            )
            assert [
                round(x, 6) for x in (got.task_day, got.task_month, got.all_day, got.all_month)
            ] == [round(x, 6) for x in want], (now, zone, daemon_zone)
    finally:
        db.close()


def test_a_success_is_changed_when_its_result_differs_from_the_previous_successs(
    tmp_path: Path,
) -> None:
    from bassi_schedd.daemon.agentctl import changed_hash
    from bassi_schedd.store.state import StateDB

    db = StateDB.open(tmp_path / "state.db")
    now = datetime(2026, 12, 6, tzinfo=UTC)
    seen = []
    try:
        for i, text in enumerate(("first", "first", "second")):
            run_dir = tmp_path / f"r{i}"
            run_dir.mkdir()
            (run_dir / "result.md").write_text(text)
            run_id = db.start_manual_run("t", f"r{i}", lambda _, d=run_dir: str(d), 1, None, now)
            row = db.get_run(run_id)
            assert row is not None
            sha, changed = changed_hash(db, None, row, RunStatus.SUCCESS)
            with db.tx() as tx:
                tx.record_end(row, RunStatus.SUCCESS, 0, now, result_sha256=sha)
            seen.append(changed)
        assert seen == [True, False, True]  # the first success counts as changed
        assert changed_hash(db, None, row, RunStatus.FAILED) == (None, False)
        import hashlib

        assert db.get_run("r2").result_sha256 == hashlib.sha256(b"second").hexdigest()  # type: ignore[union-attr]
    finally:
        db.close()


def test_kubernetes_export_warns_about_keys_that_need_the_history(home: Home) -> None:
    from bassi_schedd.export import collect

    path = home.tasks_dir / "mail.toml"
    path.write_text(
        'schedule = "@daily"\nprompt = "Before: {last_result}"\n'
        "[budget]\ndaily_usd = 1\n[agent]\ncontinue_session = true\n"
    )
    path.chmod(0o600)
    out = collect.export_kubernetes(home, [], "img", None)
    assert [n.key for n in out.notes] == ["budget", "agent.continue_session", "prompt"]
    assert collect.export_systemd(home, []).notes == []  # execute keeps the home's history
