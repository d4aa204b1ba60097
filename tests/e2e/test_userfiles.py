"""Hostile files where bassi-schedd reads user data (issue #13): names that are not UTF-8 or hold
control characters, FIFOs, /proc, huge files, deep nesting, a byte-order mark, broken symlinks, a
tasks folder others may write to. Each through the real CLI (strict UTF-8 stdout, as a pipe into
a strict reader would be) or the real daemon: one sentence naming the file, never a traceback or
a hang, and the daemon goes on with the other tasks."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from support import CliResult, Start, faketime_env, runs, wait_for

from bassi_schedd.config.paths import Home
from bassi_schedd.config.taskfile import load_task_file
from bassi_schedd.core.errors import TaskFileError, printable
from bassi_schedd.core.spec import DaemonConfig

Cli = Callable[..., CliResult]
MAX_FILE_BYTES = 1024 * 1024  # the documented limit for task and prompt files
STRICT = {"PYTHONIOENCODING": "utf-8:strict"}
OK_TASK = b'schedule = "0 0 1 1 *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n'
DEEP = b"x = " + b"[" * 500 + b"]" * 500 + b"\n"


def put(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def put_raw_name(tasks_dir: Path, name: bytes, data: bytes) -> bytes:
    """Create a file whose name is not valid UTF-8 (only a bytes path can say it)."""
    path = os.fsencode(tasks_dir) + b"/" + name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return path


def clean(r: CliResult) -> str:
    """All output, after checking it has no traceback and nothing a terminal would obey."""
    out = r.stdout + r.stderr
    assert "Traceback" not in out, out
    assert "\x1b" not in out and "\r" not in out, repr(out)
    return out


def log_events(home: Home, event: str) -> list[dict[str, object]]:
    if not home.log_file.exists():
        return []
    lines = home.log_file.read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e.get("event") == event]


# -- names from the disk -------------------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_shown_escaped(home: Home, cli: Cli) -> None:
    put(home.tasks_dir / "good.toml", OK_TASK)
    put_raw_name(home.tasks_dir, b"caf\xe9.toml", OK_TASK)
    shown = f"{home.tasks_dir}/caf\\xe9.toml"

    r = cli("check", env=STRICT)
    assert r.returncode == 1, clean(r)
    assert r.stdout.splitlines() == [
        f"error {shown}: the file name gives the task name 'caf\\xe9', which is not allowed; "
        "rename the file to lowercase letters, digits, '-' and '_' "
        "(at most 64, starting with a letter or digit)",
        "ok good",
    ]
    r = cli("list", env=STRICT)
    assert r.returncode == 0, clean(r)
    assert any(line.split()[:2] == ["caf\\xe9.toml", "-"] for line in r.stdout.splitlines())
    r = cli("list", "--json", env=STRICT)
    bad = [row for row in json.loads(r.stdout) if row["state"] == "invalid"]
    assert [(row["name"], row["file"]) for row in bad] == [("caf\\xe9.toml", shown)]
    r = cli("status", env=STRICT)
    assert r.returncode == 3, clean(r)
    assert f"invalid {shown}: the file name gives the task name 'caf\\xe9'" in r.stdout


def test_control_characters_in_names_are_escaped_by_list_and_status(home: Home, cli: Cli) -> None:
    put(home.tasks_dir / "x\n\x1b[31mred.toml", OK_TASK)
    for command in ("check", "list", "status"):
        out = clean(cli(command, env=STRICT))
        assert "x\\n\\x1b[31mred" in out, (command, out)


# -- what a file is ------------------------------------------------------------------------------


def test_a_fifo_a_broken_symlink_and_a_loop_are_reported_one_line_each(
    home: Home, cli: Cli
) -> None:
    put(home.tasks_dir / "good.toml", OK_TASK)
    os.mkfifo(home.tasks_dir / "pipe.toml", 0o600)
    (home.tasks_dir / "gone.toml").symlink_to(home.root / "nowhere.toml")
    (home.tasks_dir / "loop.toml").symlink_to("loop.toml")
    r = cli("check", timeout=30)
    assert r.returncode == 1, clean(r)
    assert r.stdout.splitlines() == [
        f"error {home.tasks_dir}/gone.toml: is a symbolic link to {home.root}/nowhere.toml, "
        "which does not exist",
        "ok good",
        f"error {home.tasks_dir}/loop.toml: is a symbolic link that loops "
        "(it leads back to itself)",
        f"error {home.tasks_dir}/pipe.toml: is not a regular file (a FIFO)",
    ]
    r = cli("list", timeout=30)
    states = {line.split()[0]: line.split()[-1] for line in r.stdout.splitlines()[1:]}
    assert states == {"gone": "invalid", "good": "enabled", "loop": "invalid", "pipe": "invalid"}
    assert "3 task files are invalid" in clean(r)


@pytest.mark.parametrize(
    ("prompt_file", "needle"),
    [
        ("/proc/kmsg", "'/proc/kmsg' is under /proc, which holds system data"),
        ("/proc/self/environ", "is under /proc"),
        ("../../../../../../../../../proc/self/environ", "is under /proc"),
        ("/dev/zero", "is under /dev"),
        ("pipe.md", "is not a regular file (a FIFO)"),
        ("big.md", "is too large (1048577 bytes; bassi-schedd reads at most 1 MiB)"),
    ],
)
def test_prompt_files_that_would_hang_or_leak_are_refused(
    home: Home, cli: Cli, prompt_file: str, needle: str
) -> None:
    os.mkfifo(home.tasks_dir / "pipe.md", 0o600)
    put(home.tasks_dir / "big.md", b"a" * (MAX_FILE_BYTES + 1))
    task = put(
        home.tasks_dir / "t.toml", f'schedule = "@daily"\nprompt_file = "{prompt_file}"\n'.encode()
    )
    for command in ("check", "status"):
        out = clean(cli(command, timeout=30))
        assert f"{task}:2: key 'prompt_file': " in out and needle in out, (command, out)


def test_a_task_file_over_the_size_limit_is_refused(home: Home, cli: Cli) -> None:
    padding = b"# " + b"x" * MAX_FILE_BYTES + b"\n"
    task = put(home.tasks_dir / "huge.toml", OK_TASK + padding)
    r = cli("check", "huge")
    assert r.returncode == 1
    size = len(OK_TASK + padding)
    assert r.stdout.strip() == (
        f"error {task}: is too large ({size} bytes; bassi-schedd reads at most 1 MiB)"
    )


# -- what a file holds ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["check", "next", "execute", "pause", "resume"])
def test_deeply_nested_task_file_is_one_sentence(home: Home, cli: Cli, command: str) -> None:
    task = put(home.tasks_dir / "deep.toml", OK_TASK + DEEP)
    r = cli(command, "deep")
    out = clean(r)
    assert r.returncode in (1, 2), out
    assert f"{task}: nests arrays or tables more than 32 levels deep, so it is refused" in out


@pytest.mark.parametrize(
    "argv", [["check"], ["list"], ["status"], ["next", "t"], ["run", "--once"], ["doctor"]]
)
def test_deeply_nested_schedd_toml_is_one_sentence(home: Home, cli: Cli, argv: list[str]) -> None:
    put(home.tasks_dir / "t.toml", OK_TASK)
    put(home.config_file, DEEP)
    out = clean(cli(*argv))
    assert f"{home.config_file}: nests arrays or tables more than 32 levels deep" in out, out


def test_a_byte_order_mark_is_named(home: Home, cli: Cli) -> None:
    task = put(home.tasks_dir / "bom.toml", b"\xef\xbb\xbf" + OK_TASK)
    put(home.config_file, b'\xef\xbb\xbftimezone = "UTC"\n')
    r = cli("check")
    assert r.returncode == 1
    sentence = (
        "1: starts with a UTF-8 byte-order mark (BOM), which TOML does not allow; "
        "save the file as UTF-8 without a BOM"
    )
    assert r.stdout.splitlines() == [
        f"error {home.config_file}:{sentence}",
        f"error {task}:{sentence}",
    ]


# -- which file a name means ---------------------------------------------------------------------


def test_a_task_named_schedd_is_a_task(home: Home, cli: Cli) -> None:
    put(home.tasks_dir / "schedd.toml", OK_TASK)
    r = cli("check")
    assert (r.returncode, r.stdout) == (0, "ok schedd\n")
    r = cli("check", "schedd")
    assert (r.returncode, r.stdout) == (0, "ok schedd\n")


def test_a_bare_name_means_the_task_even_where_a_folder_has_that_name(home: Home, cli: Cli) -> None:
    put(home.tasks_dir / "backup.toml", OK_TASK)
    (home.root / "backup").mkdir()  # the CLI runs in home.root: ./backup exists
    r = cli("check", "backup")
    assert (r.returncode, r.stdout) == (0, "ok backup\n")


# -- the tasks folder ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o777, 0o770])
def test_a_tasks_folder_others_may_write_to_is_refused(home: Home, cli: Cli, mode: int) -> None:
    put(home.tasks_dir / "t.toml", OK_TASK)
    home.tasks_dir.chmod(mode)
    who = "group/world" if mode & 0o002 else "group"
    sentence = (
        f"{home.tasks_dir}: is {who}-writable (mode {mode:04o}), so no task in it is loaded; "
        f"run 'chmod go-w {home.tasks_dir}'"
    )
    r = cli("check")
    assert (r.returncode, r.stdout) == (1, f"error {sentence}\n")
    for argv in (["list"], ["next", "t"], ["execute", "t"], ["pause", "t"]):
        r = cli(*argv)
        assert (r.returncode, r.stderr) == (1, f"bassi-schedd: {sentence}\n"), argv
    r = cli("status")
    assert "0 loaded: 0 enabled, 0 paused, 0 done, 1 invalid\n" in r.stdout
    assert f"   invalid {sentence}\n" in r.stdout
    home.tasks_dir.chmod(0o700)
    assert cli("check").stdout == "ok t\n"


# -- the running daemon --------------------------------------------------------------------------


def test_daemon_reports_hostile_task_files_once_and_goes_on(
    home: Home, cli: Cli, daemon: Start
) -> None:
    put(home.tasks_dir / "good.toml", OK_TASK)
    d = daemon()
    d.wait_ready()
    put_raw_name(home.tasks_dir, b"caf\xe9.toml", OK_TASK)
    put(home.tasks_dir / "deep.toml", OK_TASK + DEEP)
    put(home.tasks_dir / "bom.toml", b"\xef\xbb\xbf" + OK_TASK)
    os.mkfifo(home.tasks_dir / "pipe.toml", 0o600)
    (home.tasks_dir / "gone.toml").symlink_to(home.root / "nowhere.toml")
    d.signal(signal.SIGHUP)
    expected = {
        f"{home.tasks_dir}/caf\\xe9.toml": "the file name gives the task name 'caf\\xe9'",
        "deep": "nests arrays or tables more than 32 levels deep",
        "bom": "starts with a UTF-8 byte-order mark",
        "pipe": "is not a regular file (a FIFO)",
        "gone": "is a symbolic link to",
    }

    def reported() -> dict[object, object] | None:
        found = {e["task"]: e["error"] for e in log_events(home, "task.invalid")}
        return found if set(found) >= set(expected) else None

    found = wait_for(reported, 20)
    assert isinstance(found, dict)
    for key, needle in expected.items():
        assert needle in str(found[key]), (key, found[key])
    # The daemon is alive and still runs the good task; each problem was logged once.
    assert cli("trigger", "good").returncode == 0
    wait_for(lambda: [r for r in runs(home, "good") if r["status"] == "success"], 15)
    d.signal(signal.SIGHUP)
    wait_for(lambda: len(log_events(home, "daemon.reload")) >= 2, 15)
    assert len(log_events(home, "task.invalid")) == len(expected)
    assert d.stop() == 0


@pytest.mark.parametrize("hostile", ["not_utf8", "fifo", "proc"])
def test_a_prompt_file_that_goes_bad_before_a_queued_start_fails_that_run_only(
    home: Home, cli: Cli, daemon: Start, tmp_path: Path, hostile: str
) -> None:
    release = tmp_path / "release"
    # The "executor" holds the first run until the test releases it, so the second one queues.
    runner = ["/bin/sh", "-c", f"while [ ! -e {release} ]; do sleep 0.05; done", "sh"]
    put(home.config_file, f"runner = {json.dumps(runner)}\n".encode())
    prompt = put(home.tasks_dir / "p.md", b"Say hello\n")
    put(
        home.tasks_dir / "agent.toml",
        b'schedule = "0 0 1 1 *"\ntimezone = "UTC"\nprompt_file = "p.md"\noverlap = "queue"\n',
    )
    put(home.tasks_dir / "other.toml", OK_TASK)
    # Just after a minute boundary, so no tick re-reads the task between the edit and the start;
    # the CLI shares the clock, so its requests are not in the daemon's future.
    clock = faketime_env("2026-11-01 05:30:01")
    d = daemon(fake_at="2026-11-01 05:30:01")
    d.wait_ready()
    assert cli("trigger", "agent", env=clock).returncode == 0
    wait_for(lambda: [r for r in runs(home, "agent") if r["status"] == "running"], 15)
    assert cli("trigger", "agent", env=clock).returncode == 0
    wait_for(lambda: [r for r in runs(home, "agent") if r["status"] == "queued"], 15)
    prompt.unlink()
    if hostile == "not_utf8":
        put(prompt, b"caf\xe9\n")
        reason = f"the prompt file {prompt} is not valid UTF-8 text (line 1)"
    elif hostile == "fifo":
        os.mkfifo(prompt, 0o600)
        reason = f"the prompt file {prompt} is not a regular file (a FIFO)"
    else:
        prompt.symlink_to("/proc/self/environ")
        reason = f"the prompt file {prompt} is under /proc, which holds system data"
    release.touch()

    def second_ended() -> list[dict[str, object]]:
        assert d.proc.poll() is None, d.output()
        return [r for r in runs(home, "agent")[1:] if r["status"] not in ("queued", "running")]

    (second,) = wait_for(second_ended, 20)  # type: ignore[misc]
    assert second["status"] == "failed"
    output = (Path(str(second["run_dir"])) / "output.log").read_text()
    assert output.startswith(f"bassi-schedd: {reason}"), output
    assert "ANTHROPIC" not in output and "PATH=" not in output
    (end,) = [e for e in log_events(home, "run.end") if e["run_id"] == second["run_id"]]
    assert str(end["error"]).startswith(reason)
    # The daemon goes on: other tasks run, SIGTERM still stops it.
    assert cli("trigger", "other", env=clock).returncode == 0
    wait_for(lambda: [r for r in runs(home, "other") if r["status"] == "success"], 15)
    assert d.stop() == 0


def test_daemon_loads_nothing_from_a_writable_tasks_folder_until_fixed(
    home: Home, cli: Cli, daemon: Start
) -> None:
    put(home.tasks_dir / "good.toml", OK_TASK)
    d = daemon()
    d.wait_ready()
    wait_for(lambda: log_events(home, "task.loaded"), 10)
    home.tasks_dir.chmod(0o777)
    d.signal(signal.SIGHUP)
    wait_for(lambda: log_events(home, "task.removed"), 15)
    (invalid,) = log_events(home, "task.invalid")
    assert invalid["task"] == str(home.tasks_dir)
    assert "is group/world-writable (mode 0777), so no task in it is loaded" in str(
        invalid["error"]
    )
    home.tasks_dir.chmod(0o700)
    d.signal(signal.SIGHUP)
    wait_for(lambda: len(log_events(home, "task.loaded")) == 2, 15)
    assert cli("trigger", "good").returncode == 0
    wait_for(lambda: [r for r in runs(home, "good") if r["status"] == "success"], 15)
    assert d.stop() == 0


# -- the guard itself ----------------------------------------------------------------------------


def test_printable_shows_undecodable_bytes_and_controls_escaped() -> None:
    assert printable(os.fsdecode(b"caf\xe9.toml")) == "caf\\xe9.toml"
    assert printable("a\nb\x1b[2J\u202egnp.toml") == "a\\nb\\x1b[2J\\u202egnp.toml"
    assert printable("Zürich ✓") == "Zürich ✓"
    text = printable(os.fsdecode(b"\xff\xfe\n"))
    assert text.isprintable() and text.encode("utf-8")


def test_load_task_file_refuses_what_the_guard_refuses(home: Home) -> None:
    os.mkfifo(home.tasks_dir / "pipe.toml", 0o600)
    with pytest.raises(TaskFileError, match=r"pipe\.toml: is not a regular file \(a FIFO\)$"):
        load_task_file(home.tasks_dir / "pipe.toml", DaemonConfig(timezone="UTC"))


def test_the_log_file_never_fails_on_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    from bassi_schedd.logs.logfile import LogFile, render_json

    log = LogFile(tmp_path / "schedd.log", max_bytes=1 << 20, backups=1, retry_s=1.0)
    name = os.fsdecode(b"caf\xe9.toml")  # what a caller that forgot printable() would pass
    assert log.write(render_json({"event": "task.invalid", "task": name})) is None
    log.close()
    (line,) = (tmp_path / "schedd.log").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["task"] == name
