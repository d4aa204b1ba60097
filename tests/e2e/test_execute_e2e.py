"""``bassi-schedd execute`` end to end: the real CLI in a subprocess, a fake or bundled claude."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from support import CLI, CliResult, base_env, db_rows, flag_value, has_flag, wait_for
from support.fake_claude import RESULT_TEXT, install, write_run_dir

from bassi_schedd.config.paths import Home

Cli = Callable[..., CliResult]


def result_json(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "result.json").read_text())
    return data


def transcript(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "transcript.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def assert_one_clean_error_line(res: CliResult, needle: str) -> None:
    """Expected failures: no traceback, and the last stderr line is the one sentence."""
    assert "Traceback" not in res.stderr + res.stdout
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("bassi-schedd: ") and needle in last, res.stderr


# -- execute --run-dir with the fake CLI ------------------------------------------------------


def test_success_writes_transcript_result_md_and_result_json(tmp_path: Path, cli: Cli) -> None:
    run_dir = write_run_dir(tmp_path / "run", install(tmp_path), tmp_path, model="m1")
    res = cli("execute", "--run-dir", str(run_dir))
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    assert "Step 1: listing files.\n> Bash ls\nAll done: FAKE RESULT\n" in res.stdout
    assert "-- success · 2 turns · $0.0123" in res.stdout
    lines = transcript(run_dir)
    assert [x["type"] for x in lines] == ["system", "assistant", "user", "assistant", "result"]
    assert lines[0]["subtype"] == "init" and lines[-1]["result"] == RESULT_TEXT
    assert (run_dir / "result.md").read_text() == RESULT_TEXT
    data = result_json(run_dir)
    assert {k: data[k] for k in ("status", "is_error", "subtype", "num_turns", "error")} == {
        "status": "success",
        "is_error": False,
        "subtype": "success",
        "num_turns": 2,
        "error": None,
    }
    assert data["total_cost_usd"] == 0.0123 and data["duration_ms"] == 1234
    assert (data["usage"]["input_tokens"], data["usage"]["output_tokens"]) == (120, 45)
    assert data["session_id"] == lines[0]["session_id"] and data["model"] == "m1"
    assert data["exit_code"] == 0 and data["run_id"] == "20260101T000000Z-abcdef"
    for name in ("transcript.jsonl", "result.md", "result.json"):
        assert stat.S_IMODE(os.stat(run_dir / name).st_mode) == 0o600


def test_agent_options_reach_the_cli(tmp_path: Path, cli: Cli) -> None:
    record = tmp_path / "record.json"
    work = tmp_path / "work"
    work.mkdir()
    run_dir = write_run_dir(
        tmp_path / "run",
        install(tmp_path, record=record),
        work,
        prompt="Summarise {this} — literally.\nSecond line.",
        model="claude-sonnet-4-5",
        max_turns=7,
        max_budget_usd=0.25,
        allowed_tools=("Read", "Bash"),
        permission_mode="acceptEdits",
        append_system_prompt="Write results to _RESULTS_FROM_AGENT/.",
    )
    res = cli("execute", "--run-dir", str(run_dir))
    assert res.returncode == 0, res.stderr
    rec = json.loads(record.read_text())
    argv = rec["argv"]

    def value(flag: str) -> str | None:
        return flag_value(argv, flag)

    assert value("--model") == "claude-sonnet-4-5"
    assert value("--max-turns") == "7"
    assert value("--max-budget-usd") == "0.25"
    assert value("--allowedTools") == "Read,Bash"
    assert value("--permission-mode") == "acceptEdits"
    # preset system prompt kept (no --system-prompt), ours appended
    assert value("--append-system-prompt") == "Write results to _RESULTS_FROM_AGENT/."
    assert not has_flag(argv, "--system-prompt")
    assert value("--setting-sources") == "user,project,local"
    assert rec["cwd"] == str(work)
    init, user = rec["stdin"]
    assert init["type"] == "control_request" and init["request"]["subtype"] == "initialize"
    assert user["message"]["content"] == "Summarise {this} — literally.\nSecond line."
    assert not any("Summarise" in a for a in argv), "the prompt never goes in argv"


def test_unset_agent_options_are_left_to_the_cli(tmp_path: Path, cli: Cli) -> None:
    record = tmp_path / "record.json"
    run_dir = write_run_dir(tmp_path / "run", install(tmp_path, record=record), tmp_path)
    assert cli("execute", "--run-dir", str(run_dir)).returncode == 0
    argv = json.loads(record.read_text())["argv"]
    for flag in ("--model", "--max-turns", "--max-budget-usd", "--allowedTools"):
        assert not has_flag(argv, flag)
    for flag in ("--permission-mode", "--append-system-prompt", "--system-prompt"):
        assert not has_flag(argv, flag)
    assert flag_value(argv, "--setting-sources") == "user,project,local"


FAILURES = [
    # scenario, exit code, status, error_kind, text in the error
    ("error_max_turns", 1, "failed", "max_turns", "Reached maximum number of turns (3)"),
    ("error_max_budget", 1, "failed", "max_budget", "Reached maximum budget ($1.0)"),
    ("error_during_execution", 1, "failed", "agent_error", "fake tool crashed"),
    ("rate_limit", 75, "temporary_failure", "rate_limit", "Request rejected (429)"),
    ("usage_limit", 75, "temporary_failure", "rate_limit", "resets at 2030-01-01"),
    ("overloaded", 75, "temporary_failure", "overloaded", "529 fake overloaded_error"),
    ("server_error", 75, "temporary_failure", "server_error", "500 fake api_error"),
    ("network", 75, "temporary_failure", "network", "ECONNREFUSED"),
    ("not_logged_in", 1, "failed", "not_logged_in", "claude /login"),
    ("auth_failed", 1, "failed", "authentication", "401 fake authentication_error"),
    ("billing", 1, "failed", "billing", "Credit balance is too low"),
    ("invalid_request", 1, "failed", "invalid_request", "400 fake invalid_request_error"),
    ("garbage", 1, "failed", "protocol", "not stream-json"),
    ("crash", 1, "failed", "cli_failed", "fake claude: fatal internal error"),
    ("no_result", 1, "failed", "no_result", "ended without a result"),
]


def execute_here(
    home: Home, run_dir: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> CliResult:
    """``execute --run-dir`` in this process (the SDK imported once, not per case): the same
    entry point a user's command reaches; the tests above run it as a subprocess."""
    from bassi_schedd.cli.main import main

    for key, value in base_env(home.root).items():
        monkeypatch.setenv(key, value)
    capfd.readouterr()
    rc = main(["execute", "--run-dir", str(run_dir)])
    out, err = capfd.readouterr()
    return CliResult(rc, out, err)


@pytest.mark.parametrize(("scenario", "code", "status", "kind", "needle"), FAILURES)
def test_failures_map_to_exit_codes(
    tmp_path: Path,
    home: Home,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    scenario: str,
    code: int,
    status: str,
    kind: str,
    needle: str,
) -> None:
    run_dir = write_run_dir(tmp_path / "run", install(tmp_path, scenario), tmp_path, max_turns=3)
    res = execute_here(home, run_dir, capfd, monkeypatch)
    assert res.returncode == code, res.stdout + res.stderr
    assert_one_clean_error_line(res, needle)
    data = result_json(run_dir)
    assert (data["status"], data["error_kind"], data["is_error"]) == (status, kind, True)
    assert data["exit_code"] == code and needle in data["error"]
    # result.md: the agent's last words, never the CLI's error prose
    last_words = {
        "error_max_turns": "Step 1: listing files.",
        "error_max_budget": "Step 1: listing files.",
    }
    last_words |= {"crash": "About to crash.", "no_result": "I stopped without a result."}
    assert (run_dir / "result.md").read_text() == last_words.get(scenario, "")
    lines = transcript(run_dir)  # every line parses
    if scenario not in ("garbage",):
        assert lines[0]["subtype"] == "init"
    if scenario in ("error_max_turns", "error_max_budget", "rate_limit", "not_logged_in"):
        assert lines[-1]["type"] == "result" and lines[-1]["is_error"] is True
        assert data["subtype"] == lines[-1]["subtype"]
        assert data["total_cost_usd"] == lines[-1]["total_cost_usd"]


def test_crash_keeps_the_cli_stderr_in_the_output(tmp_path: Path, cli: Cli) -> None:
    run_dir = write_run_dir(tmp_path / "run", install(tmp_path, "crash"), tmp_path)
    res = cli("execute", "--run-dir", str(run_dir))
    assert "fake claude: fatal internal error\n" in res.stderr
    assert "About to crash." in res.stdout


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ("missing_dir", "does not exist"),
        ("no_task", "has no task.json"),
        ("command", "is a command task"),
        ("cwd_gone", "is not a folder"),
    ],
)
def test_bad_run_folders_exit_2(tmp_path: Path, cli: Cli, setup: str, needle: str) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    run_dir = write_run_dir(tmp_path / "run", install(tmp_path), cwd)
    if setup == "missing_dir":
        run_dir = tmp_path / "nope"
    elif setup == "no_task":
        (run_dir / "task.json").unlink()
    elif setup == "command":
        data = json.loads((run_dir / "task.json").read_text())
        (run_dir / "task.json").write_text(json.dumps({**data, "command": ["/bin/true"]}))
    elif setup == "cwd_gone":
        cwd.rmdir()
    res = cli("execute", "--run-dir", str(run_dir))
    assert res.returncode == 2
    assert_one_clean_error_line(res, needle)
    if setup != "missing_dir":
        assert result_json(run_dir)["status"] == "bad_task"


@pytest.mark.parametrize(
    ("args", "needle"),
    [((), "needs a TASK name"), (("demo", "--run-dir", "/tmp"), "not both")],
)
def test_execute_usage_errors(cli: Cli, args: tuple[str, ...], needle: str) -> None:
    res = cli("execute", *args)
    assert res.returncode == 2
    assert_one_clean_error_line(res, needle)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_stopped_run_leaves_a_readable_partial_transcript(
    tmp_path: Path, home: Home, sig: int
) -> None:
    """What the daemon's timeout does: signal the run's process group mid-run."""
    record = tmp_path / "record.json"
    run_dir = write_run_dir(tmp_path / "run", install(tmp_path, "hang", record), tmp_path)
    out = (tmp_path / "output.log").open("wb")
    proc = subprocess.Popen(
        [*CLI, "execute", "--run-dir", str(run_dir)],
        env=base_env(home.root),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: len(transcript(run_dir)) >= 2 if record.exists() else False, 60)
        os.killpg(proc.pid, sig)
        rc = proc.wait(timeout=30)
    finally:
        out.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert [x["type"] for x in transcript(run_dir)] == ["system", "assistant"]
    fake_pid = json.loads(record.read_text())["pid"]
    wait_for(lambda: not _alive(fake_pid), 10)
    log = (tmp_path / "output.log").read_text()
    assert "Starting a long job." in log and "Traceback" not in log
    if sig == signal.SIGTERM:
        assert rc == 128 + signal.SIGTERM
        data = result_json(run_dir)
        assert (data["status"], data["error"]) == ("interrupted", "interrupted by SIGTERM")
        assert data["session_id"] == transcript(run_dir)[0]["session_id"]
    else:
        assert rc == -signal.SIGKILL
        assert not (run_dir / "result.json").exists()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


# -- the bundled claude CLI, logged out -------------------------------------------------------


def test_bundled_cli_not_logged_in(tmp_path: Path, home: Home) -> None:
    """The real CLI with an empty HOME and no key: exit 1 and how to log in, no traceback."""
    empty_home = tmp_path / "emptyhome"
    empty_home.mkdir()
    run_dir = write_run_dir(tmp_path / "run", None, tmp_path)
    env = {
        k: v
        for k, v in base_env(home.root).items()
        if not k.startswith(("ANTHROPIC_", "CLAUDE_", "AWS_", "GOOGLE_", "XDG_"))
    }
    env["HOME"] = str(empty_home)
    started = time.monotonic()
    res = subprocess.run(
        [*CLI, "execute", "--run-dir", str(run_dir)],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    took_s = time.monotonic() - started
    print(f"bundled CLI, logged out: exit {res.returncode} after {took_s:.1f}s")
    assert res.returncode == 1, res.stdout + res.stderr
    assert_one_clean_error_line(res, "not logged in")
    data = result_json(run_dir)
    assert (data["status"], data["error_kind"]) == ("failed", "not_logged_in")
    for needle in ("claude /login", "claude setup-token", "ANTHROPIC_API_KEY"):
        assert needle in data["error"]
    assert transcript(run_dir)[0]["subtype"] == "init"


# -- the daemon never loads the SDK ------------------------------------------------------------


def test_daemon_modules_do_not_import_the_sdk() -> None:
    code = (
        "import sys, bassi_schedd.cli.main, bassi_schedd.daemon.loop, bassi_schedd.cli.run, "
        "bassi_schedd.core.outcome, bassi_schedd.agent.transcript\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('claude_agent_sdk', 'mcp'))\n"
        "assert not bad, bad"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr


def test_the_daemon_does_not_load_rich() -> None:
    """structlog would import rich for tracebacks: ~6 MiB of RSS the daemon has no use for."""
    code = (
        "import sys, bassi_schedd.cli.main, bassi_schedd.cli.run, structlog\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'pygments') "
        "and sys.modules[m] is not None)\n"
        "assert not bad, bad"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr


# -- execute TASK ------------------------------------------------------------------------------


def agent_task(tmp_path: Path, scenario: str = "success", extra: str = "") -> str:
    record = tmp_path / "record.json"
    return f"""
        schedule = "@daily"
        prompt = "Hello from {{task_name}} {{not_a_variable}}"
        cwd = "{tmp_path}"
        env = {{ REPORT_FORMAT = "short" }}
        {extra}
        [agent]
        model = "m1"
        cli_path = "{install(tmp_path, scenario, record)}"
    """


def history(home: Home) -> list[dict[str, object]]:
    return db_rows(home, "SELECT * FROM runs ORDER BY started_at")


def test_execute_task_runs_the_agent_and_records_a_manual_run(
    tmp_path: Path, home: Home, cli: Cli, write_task: Callable[[str, str], Path]
) -> None:
    write_task("demo", agent_task(tmp_path))
    res = cli("execute", "demo", env={"SECRET_ONLY_IN_MY_SHELL": "x"})
    assert res.returncode == 0, res.stderr
    assert "All done: FAKE RESULT" in res.stdout and "> Bash ls" in res.stdout
    (row,) = history(home)
    assert (row["task"], row["trigger"], row["status"], row["exit_code"]) == (
        "demo",
        "manual",
        "success",
        0,
    )
    assert (row["cost_usd"], row["input_tokens"], row["output_tokens"]) == (0.0123, 120, 45)
    run_dir = Path(str(row["run_dir"]))
    assert run_dir.parent == home.runs_dir / "demo"
    assert (run_dir / "prompt.txt").read_text().strip() == "Hello from demo {not_a_variable}"
    assert (run_dir / "result.md").read_text() == RESULT_TEXT
    assert "All done: FAKE RESULT" in (run_dir / "output.log").read_text()
    rec = json.loads((tmp_path / "record.json").read_text())
    # the same clean environment as a daemon run (SPEC 5)
    assert rec["env"]["BASSI_TASK"] == "demo" and rec["env"]["BASSI_RUN_DIR"] == str(run_dir)
    assert rec["env"]["REPORT_FORMAT"] == "short"
    assert "SECRET_ONLY_IN_MY_SHELL" not in rec["env_names"]


def test_execute_task_from_a_file_path(tmp_path: Path, home: Home, cli: Cli) -> None:
    elsewhere = tmp_path / "drafts" / "try-it.toml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(
        f'schedule = "@daily"\ncwd = "{tmp_path}"\ncommand = ["/bin/echo", "hi"]\n'
    )
    elsewhere.chmod(0o600)
    res = cli("execute", str(elsewhere))
    assert res.returncode == 0, res.stderr
    assert "hi\n" in res.stdout
    (row,) = history(home)
    assert (row["task"], row["status"]) == ("try-it", "success")
    assert (Path(str(row["run_dir"])) / "exit_code").read_text() == "0\n"


def test_execute_task_interrupted_by_ctrl_c(
    tmp_path: Path, home: Home, write_task: Callable[[str, str], Path]
) -> None:
    """^C in a terminal: SIGINT to the foreground process group (executor and CLI)."""
    write_task("demo", agent_task(tmp_path, "hang"))
    proc = subprocess.Popen(
        [*CLI, "execute", "demo"],
        env=base_env(home.root),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_for(lambda: (tmp_path / "record.json").exists() and history(home), 60)
        run_dir = Path(str(history(home)[0]["run_dir"]))
        wait_for(lambda: len(transcript(run_dir)) >= 2, 30)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130
    assert b"Traceback" not in out + err
    assert err.decode().strip().splitlines()[-1] == "bassi-schedd: interrupted by SIGINT"
    (row,) = history(home)
    assert (row["status"], row["exit_code"]) == ("interrupted", 130)
    assert result_json(run_dir)["status"] == "interrupted"


def test_execute_task_failure_is_recorded(
    tmp_path: Path, home: Home, cli: Cli, write_task: Callable[[str, str], Path]
) -> None:
    write_task("demo", agent_task(tmp_path, "rate_limit"))
    res = cli("execute", "demo")
    assert res.returncode == 75
    assert_one_clean_error_line(res, "rate limited")
    (row,) = history(home)
    assert (row["status"], row["exit_code"]) == ("failed", 75)
    run_dir = Path(str(row["run_dir"]))
    assert "bassi-schedd: rate limited" in (run_dir / "output.log").read_text()


def test_execute_task_times_out(
    tmp_path: Path, home: Home, cli: Cli, write_task: Callable[[str, str], Path]
) -> None:
    write_task("demo", agent_task(tmp_path, "hang", 'timeout = "2s"'))
    started = time.monotonic()
    res = cli("execute", "demo")
    assert res.returncode == 124 and time.monotonic() - started < 30
    assert_one_clean_error_line(res, "timed out after 2s")
    (row,) = history(home)
    assert (row["status"], row["exit_code"]) == ("timeout", 124)


def test_execute_command_task_tees_output(
    tmp_path: Path, home: Home, cli: Cli, write_task: Callable[[str, str], Path]
) -> None:
    write_task(
        "backup",
        f"""
        schedule = "@daily"
        cwd = "{tmp_path}"
        command = ["/bin/sh", "-c", "echo out $BASSI_TASK $(pwd); echo err >&2; umask; exit 3"]
        """,
    )
    res = cli("execute", "backup")
    assert res.returncode == 3
    assert f"out backup {tmp_path}\n" in res.stdout and "err\n" in res.stdout
    assert "0077\n" in res.stdout
    (row,) = history(home)
    assert (row["trigger"], row["status"], row["exit_code"]) == ("manual", "failed", 3)
    log = (Path(str(row["run_dir"])) / "output.log").read_text()
    assert f"out backup {tmp_path}\n" in log and "err\n" in log


def test_execute_command_task_timeout_kills_it(
    tmp_path: Path, home: Home, cli: Cli, write_task: Callable[[str, str], Path]
) -> None:
    write_task(
        "slow",
        f"""
        schedule = "@daily"
        timeout = "1s"
        cwd = "{tmp_path}"
        command = ["/bin/sh", "-c", "echo started; sleep 60 & wait"]
        """,
    )
    started = time.monotonic()
    res = cli("execute", "slow")
    assert res.returncode == 124 and time.monotonic() - started < 20
    assert "started" in res.stdout
    assert_one_clean_error_line(res, "timed out after 1s")
    (row,) = history(home)
    assert (row["status"], row["exit_code"]) == ("timeout", 124)


def test_execute_command_ends_with_its_main_process_and_stops_what_it_left(
    tmp_path: Path, home: Home, cli: Cli, write_task: Callable[[str, str], Path]
) -> None:
    """As in the daemon: the main process exited 0, so the run is a success, at once; what it
    left running (here hidden: double fork, own session, empty environment, SIGTERM ignored,
    holding the output pipe) is noted and stopped, not waited for until the timeout."""
    pid_file = tmp_path / "left.pid"
    (tmp_path / "left.sh").write_text(
        f"trap '' TERM; echo $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; exec sleep 300\n"
    )
    detach = (
        f"( setsid env -i /bin/sh {tmp_path / 'left.sh'} & ); "
        f"while [ ! -e {pid_file} ]; do sleep 0.05; done; echo done; exit 0"
    )
    home.config_file.write_text('kill_grace = "2s"\n')  # execute honours it like the daemon
    write_task(
        "detach",
        f'schedule = "@daily"\ntimeout = "40s"\ncwd = "{tmp_path}"\n'
        f'command = ["/bin/sh", "-c", "{detach}"]\n',
    )
    started = time.monotonic()
    try:
        res = cli("execute", "detach")
    finally:
        if pid_file.exists():
            pid = int(pid_file.read_text())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    # The SIGKILL after the 2 s grace ends the leftover; the timeout would be 40 s.
    assert res.returncode == 0 and time.monotonic() - started < 25, res.stderr
    assert "done\n" in res.stdout
    assert "main process exited; stopping 1 process it left running" in res.stderr
    (row,) = history(home)
    assert (row["status"], row["exit_code"]) == ("success", 0)
    output = (Path(str(row["run_dir"])) / "output.log").read_text()
    assert "done\n" in output and "main process exited; stopping" in output
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_execute_command_that_cannot_start(
    tmp_path: Path, home: Home, cli: Cli, write_task: Callable[[str, str], Path]
) -> None:
    write_task("broken", f'schedule = "@daily"\ncwd = "{tmp_path}"\ncommand = ["/no/such/x"]\n')
    res = cli("execute", "broken")
    assert res.returncode == 1
    assert_one_clean_error_line(res, "cannot start /no/such/x")
    (row,) = history(home)
    assert (row["status"], row["exit_code"]) == ("failed", 1)


def test_execute_unknown_or_invalid_task(
    cli: Cli, home: Home, write_task: Callable[[str, str], Path]
) -> None:
    res = cli("execute", "nothere")
    assert res.returncode == 2
    assert_one_clean_error_line(res, "no task named 'nothere'")
    write_task("bad", 'schedule = "@daily"\nprompt = "x"\nbogus_key = 1\n')
    res = cli("execute", "bad")
    assert res.returncode == 2
    assert_one_clean_error_line(res, "bad.toml")
    assert "bogus_key" in res.stderr
