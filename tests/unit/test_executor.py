"""The executor in-process: options, run-folder validation, transcript/result files (fake CLI)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from support.fake_claude import RESULT_TEXT, install, write_run_dir

from bassi_schedd.agent.executor import execute_run_dir
from bassi_schedd.agent.options import load_run_dir
from bassi_schedd.core.errors import UsageError


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ("no_task", "has no task.json"),
        ("bad_json", "is not valid JSON"),
        ("not_object", "must hold a JSON object"),
        ("command", "is a command task; the daemon runs its command directly"),
        ("no_prompt", "has no prompt.txt"),
        ("empty_prompt", "prompt.txt is empty"),
        ("binary_prompt", "cannot read"),
    ],
)
def test_bad_run_folders_exit_2_with_result_json(tmp_path: Path, setup: str, needle: str) -> None:
    run_dir = write_run_dir(tmp_path / "run", install(tmp_path), tmp_path)
    task_json, prompt = run_dir / "task.json", run_dir / "prompt.txt"
    if setup == "no_task":
        task_json.unlink()
    elif setup == "bad_json":
        task_json.write_text("{nope")
    elif setup == "not_object":
        task_json.write_text("[1, 2]")
    elif setup == "command":
        data = json.loads(task_json.read_text())
        task_json.write_text(json.dumps({**data, "command": ["/bin/true"]}))
    elif setup == "no_prompt":
        prompt.unlink()
    elif setup == "empty_prompt":
        prompt.write_text("  \n")
    elif setup == "binary_prompt":
        prompt.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(UsageError) as err:
        load_run_dir(run_dir)
    assert needle in str(err.value)
    rc, data = execute_run_dir(run_dir)
    assert rc == 2
    assert (data["status"], data["error_kind"], data["is_error"]) == ("bad_task", "bad_task", True)
    assert needle in data["error"]
    saved = json.loads((run_dir / "result.json").read_text())
    assert saved["error"] == data["error"] and saved["exit_code"] == 2
    assert not (run_dir / "transcript.jsonl").exists()


def test_bad_agent_options_exit_2_after_opening_the_transcript(tmp_path: Path) -> None:
    run_dir = write_run_dir(tmp_path / "run", "/nonexistent/claude", tmp_path)
    rc, data = execute_run_dir(run_dir)
    assert rc == 2 and "/nonexistent/claude is not an executable file" in data["error"]
    assert data["task"] == "demo" and data["run_id"] == "20260101T000000Z-abcdef"
    assert (run_dir / "transcript.jsonl").read_text() == ""


def test_missing_run_folder_exits_2_without_writing(tmp_path: Path) -> None:
    rc, data = execute_run_dir(tmp_path / "nope")
    assert rc == 2 and "does not exist" in data["error"]
    assert not (tmp_path / "nope").exists()


def test_each_message_is_on_disk_before_the_next_arrives(tmp_path: Path) -> None:
    """transcript.jsonl is appended and flushed per message, so a killed run leaves it readable."""
    run_dir = write_run_dir(tmp_path / "run", install(tmp_path), tmp_path)
    lines_seen: list[int] = []

    def on_message(msg: object) -> None:
        lines_seen.append(len((run_dir / "transcript.jsonl").read_text().splitlines()))

    rc, data = execute_run_dir(run_dir, on_message=on_message)
    assert rc == 0, data
    assert lines_seen == [1, 2, 3, 4, 5]
    assert (run_dir / "result.md").read_text() == RESULT_TEXT
    for name in ("transcript.jsonl", "result.md", "result.json"):
        assert stat.S_IMODE(os.stat(run_dir / name).st_mode) == 0o600, name


def test_timeout_stops_the_run(tmp_path: Path) -> None:
    run_dir = write_run_dir(tmp_path / "run", install(tmp_path, "hang"), tmp_path)
    rc, data = execute_run_dir(run_dir, timeout_s=2.0)
    assert rc == 124
    assert (data["status"], data["error"]) == ("timeout", "timed out after 2s")
    types = [json.loads(x)["type"] for x in (run_dir / "transcript.jsonl").read_text().splitlines()]
    assert types == ["system", "assistant"]
