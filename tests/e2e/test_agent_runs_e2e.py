"""Agent runs through the real daemon with a fake claude CLI, and secrets kept out of records."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import psutil
from support import Start, flag_value, runs, wait_for
from support.fake_claude import install

from bassi_schedd.config.paths import Home


def agent_task(
    write_task: Callable[[str, str], Path], name: str, cli: Path, extra: str = ""
) -> None:
    write_task(
        name,
        f"""
        schedule = "0 0 1 1 *"
        timezone = "UTC"
        prompt = "Say hi to {{task_name}}"
        {extra}
        [agent]
        cli_path = "{cli}"
        model = "claude-test-model"
        max_turns = 3
        """,
    )


def test_agent_run_records_cost_tokens_and_result(
    home: Home, write_task, daemon: Start, cli, tmp_path: Path
) -> None:
    record = tmp_path / "record.json"
    agent_task(write_task, "greet", install(tmp_path, "success", record=record))
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "greet").returncode == 0
    wait_for(lambda: runs(home) and runs(home)[0]["status"] not in ("queued", "running"), 60)
    row = runs(home)[0]
    assert (row["status"], row["exit_code"]) == ("success", 0), (
        Path(str(row["run_dir"])).joinpath("output.log").read_text()
    )
    assert (row["cost_usd"], row["input_tokens"], row["output_tokens"]) == (0.0123, 120, 45)
    run_dir = Path(str(row["run_dir"]))
    assert (run_dir / "prompt.txt").read_text() == "Say hi to greet"
    assert "FAKE RESULT" in (run_dir / "result.md").read_text()
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "success" and result["total_cost_usd"] == 0.0123
    lines = (run_dir / "transcript.jsonl").read_text().splitlines()
    assert len(lines) >= 3 and all(json.loads(x) for x in lines)
    argv = json.loads(record.read_text())["argv"]
    assert flag_value(argv, "--model") == "claude-test-model"
    assert flag_value(argv, "--max-turns") == "3"
    assert d.stop() == 0


def test_hung_agent_is_killed_by_timeout_and_keeps_its_partial_transcript(
    home: Home, write_task, daemon: Start, cli, tmp_path: Path
) -> None:
    home.config_file.write_text('kill_grace = "2s"\n')  # it ignores SIGTERM: SIGKILL ends it
    agent_task(write_task, "stuck", install(tmp_path, "hang_ignore_term"), 'timeout = "4s"')
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "stuck").returncode == 0
    row = wait_for(lambda: [r for r in runs(home) if r["status"] == "timeout"], 60)[0]  # type: ignore[index]
    transcript = Path(str(row["run_dir"])) / "transcript.jsonl"
    lines = transcript.read_text().splitlines()
    assert lines and json.loads(lines[0])  # written as it arrived, readable after the kill
    wait_for(lambda: not psutil.Process(d.pid).children(recursive=True), 20)
    assert d.stop() == 0


def test_rate_limited_agent_is_retried_three_times(
    home: Home, write_task, daemon: Start, cli, tmp_path: Path
) -> None:
    agent_task(write_task, "busy", install(tmp_path, "rate_limit"), 'retry_delay = "0.2s"')
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "busy").returncode == 0
    wait_for(lambda: len(runs(home)) == 4 and runs(home)[-1]["status"] == "failed", 90)
    assert [(r["attempt"], r["exit_code"]) for r in runs(home)] == [
        (1, 75),
        (2, 75),
        (3, 75),
        (4, 75),
    ]
    assert d.stop() == 0


def test_secret_values_never_reach_logs_history_or_run_records(
    home: Home, write_task, daemon: Start, cli, tmp_path: Path
) -> None:
    task_secret = "tsk-SECRET-0123456789"
    api_secret = "sk-ant-api03-SECRETSECRET"
    write_task(
        "uses-secret",
        f"""
        schedule = "0 0 1 1 *"
        timezone = "UTC"
        command = ["/bin/sh", "-c", "test ${{#MY_TOKEN}}${{#ANTHROPIC_API_KEY}} = 2125"]
        env = {{ MY_TOKEN = "{task_secret}" }}
        """,
    )
    d = daemon(env={"ANTHROPIC_API_KEY": api_secret})
    d.wait_ready()
    assert cli("trigger", "uses-secret").returncode == 0
    wait_for(lambda: runs(home) and runs(home)[0]["status"] == "success", 20)  # the child got both
    assert d.stop() == 0
    with sqlite3.connect(home.state_db) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    files = [home.log_file, home.state_db, *home.runs_dir.rglob("*")]
    for path in files:
        if path.is_file():
            data = path.read_bytes()
            assert task_secret.encode() not in data, path
            assert api_secret.encode() not in data, path
    assert task_secret not in d.output() and api_secret not in d.output()
