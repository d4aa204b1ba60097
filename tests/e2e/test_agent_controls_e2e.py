"""SPEC 10 through the real daemon and CLI: spend caps, the gate, the previous result and session,
`stop`, `cost` and `history --status`, with the fake stream-json claude CLI."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
from support import CliResult, Start, flag_value, has_flag, runs, wait_for
from support.fake_claude import install

from bassi_schedd.config.paths import Home

Cli = Callable[..., CliResult]
WriteTask = Callable[[str, str], Path]


def agent_task(
    write_task: WriteTask, name: str, cli_path: Path, extra: str = "", **agent: str
) -> None:
    lines = "\n".join(f"{k} = {v}" for k, v in agent.items())
    write_task(
        name,
        f"""
        schedule = "0 0 1 1 *"
        timezone = "UTC"
        prompt = "Check the inbox. Before: {{last_result}} Gate: {{when_output}}"
        {extra}
        [agent]
        cli_path = "{cli_path}"
        {lines}
        """,
    )


def finished(home: Home, task: str, n: int) -> list[dict[str, object]] | None:
    """The task's rows once ``n`` of them have ended."""
    rows = runs(home, task)
    done = [r for r in rows if r["status"] not in ("queued", "running")]
    return rows if len(done) >= n else None


def run_once(home: Home, cli: Cli, task: str, n: int) -> dict[str, object]:
    """Trigger ``task`` and return its ``n``-th row once it ended."""
    assert cli("trigger", task).returncode == 0
    rows = wait_for(lambda: finished(home, task, n), 60)
    return rows[n - 1]  # type: ignore[index]


def fake_day(days_ahead: int, hhmm: str) -> datetime:
    """A UTC instant days ahead of the real clock: triggers (stamped by the real clock) are then
    never in the daemon's future."""
    day = (datetime.now(UTC) + timedelta(days=days_ahead)).date()
    return datetime.fromisoformat(f"{day}T{hhmm}:00+00:00")


def set_clock(path: Path, at: datetime) -> None:
    path.write_text(f"@{at:%Y-%m-%d %H:%M:%S}\n")


def test_daily_cap_refuses_the_run_that_finds_it_spent_and_lets_the_next_day_run(
    home: Home, write_task: WriteTask, daemon: Start, cli: Cli, tmp_path: Path
) -> None:
    record = tmp_path / "record.json"
    agent_task(write_task, "mail", install(tmp_path, record=record, cost_usd=0.40))
    with (home.tasks_dir / "mail.toml").open("a") as f:
        f.write("\n[budget]\ndaily_usd = 1.00\n")
    (home.root / "schedd.toml").write_text(
        'timezone = "UTC"\n[notify]\non = ["budget"]\n'
        f'command = ["/bin/sh", "-c", "cat > {tmp_path}/n.json"]\n'
    )
    clock = tmp_path / "clock"
    set_clock(clock, fake_day(2, "20:00"))
    d = daemon(clock_file=clock)
    d.wait_ready()

    # SPEC 10: a cap stops runs once it is reached ("at or over"); until then each run may
    # spend what is left. Runs costing 0.40 against 1.00: 1.0, 0.6, 0.2 (the fake, like the
    # SDK, may overshoot its limit), then the fourth is refused.
    budgets = []
    for n in (1, 2, 3):
        row = run_once(home, cli, "mail", n)
        assert row["status"] == "success" and row["cost_usd"] == 0.4
        budgets.append(
            float(flag_value(json.loads(record.read_text())["argv"], "--max-budget-usd") or 0)
        )
    assert budgets == [1.0, pytest.approx(0.6), pytest.approx(0.2)]
    record.unlink()
    refused = run_once(home, cli, "mail", 4)
    assert refused["status"] == "budget_exceeded" and refused["started_at"] is None
    assert "budget.daily_usd of $1.00 is spent ($1.20 today)" in str(refused["detail"])
    assert not record.exists()  # nothing was started
    note = json.loads(
        str(
            wait_for(
                lambda: (tmp_path / "n.json").exists() and (tmp_path / "n.json").read_text(), 20
            )
        )
    )
    assert note["event"] == "budget" and "daily_usd" in note["reason"]
    skipped = [
        json.loads(x) for x in home.log_file.read_text().splitlines() if '"run.skipped"' in x
    ]
    assert [s["run_id"] for s in skipped] == [refused["run_id"]]
    listed = json.loads(cli("list", "--json").stdout)
    assert "daily_usd" in listed[0]["over_budget"]
    status = json.loads(cli("status", "--json").stdout)
    assert [x["task"] for x in status["over_budget"]] == ["mail"]

    set_clock(clock, fake_day(3, "07:00"))  # the next day in the task's zone
    next_day = run_once(home, cli, "mail", 5)
    assert next_day["status"] == "success"

    cost = json.loads(cli("cost", "--json", "--since", "3650d").stdout)
    assert cost["rows"][0]["key"] == "mail" and cost["rows"][0]["runs"] == 4
    assert cost["total_usd"] == pytest.approx(1.6)
    by_day = json.loads(cli("cost", "mail", "--by", "day", "--json", "--since", "3650d").stdout)
    assert [r["cost_usd"] for r in by_day["rows"]] == [pytest.approx(1.2), pytest.approx(0.4)]
    shown = json.loads(cli("history", "--status", "budget_exceeded", "--json").stdout)["runs"]
    assert [r["run_id"] for r in shown] == [refused["run_id"]]
    assert d.stop() == 0


def test_gate_skips_or_fails_the_run_before_anything_starts(
    home: Home, write_task: WriteTask, daemon: Start, cli: Cli, tmp_path: Path
) -> None:
    record = tmp_path / "record.json"
    gate = tmp_path / "gate.sh"
    gate.write_text("#!/bin/sh\necho 'no new mail'\necho oops >&2\nexit \"$(cat ./code)\"\n")
    gate.chmod(0o755)
    (tmp_path / "code").write_text("1")
    agent_task(
        write_task,
        "inbox",
        install(tmp_path, record=record),
        f'when = ["{gate}"]\ncwd = "{tmp_path}"',
    )
    write_task(
        "backup",
        f"""
        schedule = "0 0 1 1 *"
        command = ["/bin/sh", "-c", "echo backed up > {tmp_path}/backup.out"]
        when = ["{gate}"]
        cwd = "{tmp_path}"
        """,
    )
    d = daemon()
    d.wait_ready()
    skipped = run_once(home, cli, "inbox", 1)
    assert (skipped["status"], skipped["exit_code"]) == ("skipped_condition", 1)
    assert not record.exists()  # the executor never started the CLI
    run_dir = Path(str(skipped["run_dir"]))
    assert (run_dir / "when.log").read_text().splitlines() == ["no new mail", "oops"] or sorted(
        (run_dir / "when.log").read_text().splitlines()
    ) == ["no new mail", "oops"]
    assert not (run_dir / "transcript.jsonl").exists()
    logged = [json.loads(x) for x in home.log_file.read_text().splitlines() if '"run.skipped"' in x]
    assert logged[0]["run_id"] == skipped["run_id"] and "exited 1" in logged[0]["reason"]

    (tmp_path / "code").write_text("3")
    failed = run_once(home, cli, "backup", 1)
    assert (failed["status"], failed["exit_code"]) == ("failed", 3)
    assert "the gate 'gate.sh' exited 3" in str(failed["detail"])
    assert not (tmp_path / "backup.out").exists()

    (tmp_path / "code").write_text("0")
    ran = run_once(home, cli, "backup", 2)
    assert ran["status"] == "success" and (tmp_path / "backup.out").exists()
    (tmp_path / "code").write_text("1")
    by_hand = cli("execute", "backup")  # a run by hand goes through the gate too
    assert by_hand.returncode == 1 and "exited 1: nothing to do" in by_hand.stderr
    assert runs(home, "backup")[-1]["status"] == "skipped_condition"
    (tmp_path / "code").write_text("0")
    went = run_once(home, cli, "inbox", 2)
    assert went["status"] == "success"
    prompt = (Path(str(went["run_dir"])) / "prompt.txt").read_text()
    assert prompt == "Check the inbox. Before:  Gate: no new mail\n"
    assert d.stop() == 0


def test_a_hanging_gate_is_killed_at_when_timeout_tree_and_all(
    home: Home, write_task: WriteTask, daemon: Start, cli: Cli, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    # The gate and its children ignore SIGTERM: only the gate's own SIGKILL (2 s after its
    # timeout) ends them, well before the daemon's sweep of leftovers would (kill_grace, 10 s).
    gate = f"trap '' TERM; sleep 300 & echo $! > {pids}; sleep 301 & echo $! >> {pids}; wait"
    write_task(
        "slow",
        f"""
        schedule = "0 0 1 1 *"
        command = ["/bin/true"]
        when = ["/bin/sh", "-c", "{gate}"]
        when_timeout = "1s"
        """,
    )
    d = daemon()
    d.wait_ready()
    row = run_once(home, cli, "slow", 1)
    # The child records the verdict only once the gate's tree is gone, and the run ends after.
    for pid in map(int, pids.read_text().split()):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert row["status"] == "failed"
    assert "did not finish within 1s (when_timeout)" in str(row["detail"])
    assert float(str(row["duration_s"])) < 9
    assert d.stop() == 0


def test_last_result_and_session_carry_over_and_a_failed_resume_starts_afresh(
    home: Home, write_task: WriteTask, daemon: Start, cli: Cli, tmp_path: Path
) -> None:
    record = tmp_path / "record.json"
    fake = install(tmp_path, record=record)
    agent_task(write_task, "notes", fake, continue_session="true")
    d = daemon()
    d.wait_ready()
    first = run_once(home, cli, "notes", 1)
    assert first["status"] == "success"
    first_result = json.loads((Path(str(first["run_dir"])) / "result.json").read_text())
    md = (Path(str(first["run_dir"])) / "result.md").read_bytes()
    assert first["result_sha256"] == hashlib.sha256(md).hexdigest()
    assert first_result["resumed"] is False and not has_flag(
        json.loads(record.read_text())["argv"], "--resume"
    )

    second = run_once(home, cli, "notes", 2)
    run_dir = Path(str(second["run_dir"]))
    assert "Before: All done: FAKE RESULT" in (run_dir / "prompt.txt").read_text()
    assert (
        flag_value(json.loads(record.read_text())["argv"], "--resume") == first_result["session_id"]
    )
    assert json.loads((run_dir / "result.json").read_text())["resumed"] is True

    install(tmp_path, record=record, resume_fails=True)
    third = run_once(home, cli, "notes", 3)
    assert third["status"] == "success"
    result = json.loads((Path(str(third["run_dir"])) / "result.json").read_text())
    assert result["resumed"] is False and "No conversation found" in result["resume_error"]
    assert not has_flag(json.loads(record.read_text())["argv"], "--resume")  # the fresh attempt
    assert d.stop() == 0


def test_stop_cancels_running_agent_and_command_runs(
    home: Home, write_task: WriteTask, daemon: Start, cli: Cli, tmp_path: Path
) -> None:
    agent_task(write_task, "stuck", install(tmp_path, "hang"))
    write_task(
        "loop",
        """
        schedule = "0 0 1 1 *"
        command = ["/bin/sh", "-c", "trap '' TERM; sleep 300 & sleep 300"]
        """,
    )
    (home.root / "schedd.toml").write_text('kill_grace = "1s"\n')  # the shell ignores SIGTERM
    d = daemon()
    d.wait_ready()
    assert cli("stop", "loop").returncode == 1  # nothing running yet
    for task in ("stuck", "loop"):
        assert cli("trigger", task).returncode == 0
    wait_for(lambda: len([r for r in runs(home) if r["status"] == "running" and r["pid"]]) == 2, 60)
    stuck_id = str(runs(home, "stuck")[0]["run_id"])
    by_id = cli("stop", stuck_id, timeout=60)
    assert by_id.returncode == 0 and f"stopped {stuck_id}: cancelled" in by_id.stdout
    by_task = cli("stop", "loop", timeout=60)
    assert by_task.returncode == 0 and ": cancelled" in by_task.stdout
    assert [r["status"] for r in runs(home)] == ["cancelled", "cancelled"]
    wait_for(lambda: not psutil.Process(d.pid).children(recursive=True), 30)
    assert cli("stop", "stuck").returncode == 1
    bad = cli("stop", "Not A Run")
    assert bad.returncode == 2 and "neither a run id nor a task name" in bad.stderr
    assert d.stop() == 0


def test_notify_on_changed_skips_a_success_with_the_same_result(
    home: Home, write_task: WriteTask, daemon: Start, cli: Cli, tmp_path: Path
) -> None:
    (tmp_path / "news").write_text("nothing new")
    write_task(
        "watch",
        f"""
        schedule = "0 0 1 1 *"
        command = ["/bin/cat", "{tmp_path}/news"]
        notify = {{ on = ["changed"], command = ["/bin/sh", "-c", "cat >> {tmp_path}/notes"] }}
        """,
    )
    d = daemon()
    d.wait_ready()
    first = run_once(home, cli, "watch", 1)  # the first success counts as changed
    same = run_once(home, cli, "watch", 2)
    (tmp_path / "news").write_text("a new item")
    third = run_once(home, cli, "watch", 3)
    assert [r["status"] for r in (first, same, third)] == ["success"] * 3
    assert first["result_sha256"] == same["result_sha256"] != third["result_sha256"]

    def notes() -> list[dict[str, object]]:
        path = tmp_path / "notes"
        text = path.read_text() if path.exists() else ""
        return [json.loads(x) for x in text.splitlines()]

    # One lane per task delivers in order: had the second run notified, it would come before.
    wait_for(lambda: len(notes()) >= 2, 30)
    assert [(n["event"], n["run_id"]) for n in notes()] == [
        ("changed", first["run_id"]),
        ("changed", third["run_id"]),
    ]
    assert d.stop() == 0


def test_check_names_file_and_key_of_bad_agent_controls(
    home: Home, write_task: WriteTask, cli: Cli
) -> None:
    (home.root / "schedd.toml").write_text("[budget]\nmonthly_usd = -5\n")
    write_task("gate", 'schedule = "@daily"\nprompt = "p"\nwhen = "check.sh"\n')
    write_task(
        "cmd", 'schedule = "@daily"\ncommand = ["/bin/true"]\n[agent]\ncontinue_session = true\n'
    )
    r = cli("check")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[0] == (
        f"error {home.root / 'schedd.toml'}:2: key 'budget.monthly_usd': "
        "must be a number between 0 and 1000000, got -5"
    )
    assert (
        f"error {home.tasks_dir / 'gate.toml'}:3: key 'when': must be a list of strings" in r.stdout
    )
    assert (
        f"{home.tasks_dir / 'cmd.toml'}:4: key 'agent.continue_session': applies to agent"
        in r.stdout
    )
    assert "Traceback" not in r.stdout + r.stderr
