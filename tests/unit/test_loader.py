"""Task files: every key of SPEC 3 validated, errors naming file/key/line; the reloading cache."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from bassi_schedd.config import loader as loader_mod
from bassi_schedd.config.loader import TaskLoader, load_task_file
from bassi_schedd.config.paths import Home
from bassi_schedd.config.taskfile import read_prompt
from bassi_schedd.core.errors import TaskFileError
from bassi_schedd.core.spec import AgentOptions, DaemonConfig, NotifySpec

WriteTask = Callable[[str, str], Path]
CONFIG = DaemonConfig(timezone="America/New_York")
OK = 'schedule = "0 9 * * MON"\nprompt = "hi"\n'


def load(path: Path) -> object:
    return load_task_file(path, CONFIG)


def test_full_example_from_the_spec(
    home: Home, write_task: WriteTask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    path = write_task(
        "weekly",
        """
        description = "Weekly sales report"
        schedule = "0 9 * * MON"
        timezone = "Europe/Berlin"
        prompt = \"\"\"
        Summarise last week's sales up to {date}; last run was {last_run_date}.
        \"\"\"
        enabled = true
        timeout = "30m"
        on_missed = "all"
        missed_deadline = "24h"
        overlap = "queue"
        retries = 2
        retry_delay = "1m"
        jitter = 30
        max_output = "2MB"
        cwd = "~/work"
        env = { REPORT_FORMAT = "short" }
        command = ["~/bin/backup.sh", "--quick"]
        healthcheck_url = "https://hc-ping.com/x"
        notify = { on = ["failure", "recovered"], desktop = true }

        [agent]
        model = "claude-sonnet-4-5"
        max_turns = 30
        max_budget_usd = 2
        allowed_tools = ["Read", "Write", "Bash"]
        permission_mode = "acceptEdits"
        append_system_prompt = "Write results to _RESULTS_FROM_AGENT/."
        cli_path = "~/.local/bin/claude"
        """,
    )
    spec = load_task_file(path, CONFIG)
    assert spec.name == "weekly" and spec.path == path
    assert spec.schedule.text == "0 9 * * MON"
    assert spec.timezone == "Europe/Berlin"
    assert spec.prompt is not None and "{date}" in spec.prompt
    assert spec.timeout_s == 1800 and spec.missed_deadline_s == 86400
    assert (spec.on_missed, spec.overlap, spec.retries) == ("all", "queue", 2)
    assert (spec.retry_delay_s, spec.jitter_s) == (60, 30)
    assert spec.max_output_bytes == 2 * 1024 * 1024
    assert spec.cwd == work
    assert spec.env == (("REPORT_FORMAT", "short"),)
    assert spec.command == (f"{tmp_path}/bin/backup.sh", "--quick")
    assert spec.healthcheck_url == "https://hc-ping.com/x"
    assert spec.notify == NotifySpec(on=("failure", "recovered"), command=None, desktop=True)
    assert spec.agent == AgentOptions(
        model="claude-sonnet-4-5",
        max_turns=30,
        max_budget_usd=2.0,
        allowed_tools=("Read", "Write", "Bash"),
        permission_mode="acceptEdits",
        append_system_prompt="Write results to _RESULTS_FROM_AGENT/.",
        cli_path=f"{tmp_path}/.local/bin/claude",
    )


def test_defaults(write_task: WriteTask) -> None:
    spec = load_task_file(write_task("t", OK), CONFIG)
    assert spec.timezone == "America/New_York"  # from schedd.toml / the system
    assert (spec.enabled, spec.timeout_s, spec.on_missed, spec.overlap) == (
        True,
        3600,
        "latest",
        "skip",
    )
    assert spec.missed_deadline_s is None and spec.retries == 0 and spec.jitter_s == 0
    assert spec.max_output_bytes == 10 * 1024 * 1024
    assert spec.cwd == Path.home() and spec.command is None and spec.is_agent
    assert spec.agent == AgentOptions() and spec.notify is None


def test_prompt_file_relative_to_tasks(home: Home, write_task: WriteTask) -> None:
    (home.tasks_dir / "weekly.md").write_text("Report for {date}\n")
    spec = load_task_file(
        write_task("w", 'schedule = "@daily"\nprompt_file = "weekly.md"\n'), CONFIG
    )
    assert spec.prompt_file == home.tasks_dir / "weekly.md"
    assert spec.prompt_file.is_absolute()
    assert read_prompt(spec) == "Report for {date}\n"


def test_one_shot_at_as_string_and_as_toml_datetime(write_task: WriteTask) -> None:
    a = load_task_file(write_task("a", 'at = "2026-12-25T10:00"\ncommand = ["x"]\n'), CONFIG)
    b = load_task_file(write_task("b", 'at = 2026-12-25T10:00:00\ncommand = ["x"]\n'), CONFIG)
    assert a.schedule.kind == b.schedule.kind == "at"
    assert a.schedule.at == b.schedule.at


def test_command_task_needs_no_prompt(write_task: WriteTask) -> None:
    spec = load_task_file(
        write_task("c", 'schedule = "every 15m"\ncommand = ["/bin/true"]\n'), CONFIG
    )
    assert spec.command == ("/bin/true",) and not spec.is_agent


# -- one test per kind of error: the message names the file, the key and the line ---------------

CASES: list[tuple[str, str, str | None, int | None, str]] = [
    # (id, body, key, line, fragment)
    ("unknown", 'schedul = "* * * * *"\nprompt = "x"\n', "schedul", 1, "did you mean 'schedule'?"),
    ("unknown-far", OK + "colour = 1\n", "colour", 3, "known keys: description"),
    ("unknown-agent", OK + "[agent]\nmax_turn = 3\n", "agent.max_turn", 4, "'max_turns'"),
    ("toml", OK + "timeout = \n", None, 3, "is not valid TOML"),
    ("toml-dup", OK + 'prompt = "again"\n', None, 3, "is not valid TOML"),
    ("sched-type", "schedule = 5\nprompt = 'x'\n", "schedule", 1, "must be a string"),
    (
        "sched-cron",
        'description = "d"\n\nschedule = "61 * * * *"\nprompt = "x"\n',
        "schedule",
        3,
        "bad cron expression '61 * * * *': minute must be 0-59",
    ),
    ("sched-words", 'schedule = "whenever"\nprompt = "x"\n', "schedule", 1, "unknown schedule"),
    ("sched-none", 'prompt = "x"\n', "schedule", None, "is missing"),
    ("sched-and-at", OK + 'at = "2026-12-25T10:00"\n', "at", 3, "cannot be combined"),
    ("at-bad", 'at = "christmas"\nprompt = "x"\n', "at", 1, "bad at time 'christmas'"),
    ("zone", OK + 'timezone = "Europe/Berlim"\n', "timezone", 3, "unknown time zone"),
    ("zone-type", OK + "timezone = 1\n", "timezone", 3, "must be a string"),
    ("prompt-none", 'schedule = "@daily"\n', "prompt", None, "needs prompt or prompt_file"),
    ("prompt-empty", 'schedule = "@daily"\nprompt = "  "\n', "prompt", 2, "must not be empty"),
    ("prompt-both", OK + 'prompt_file = "x.md"\n', "prompt_file", 3, "cannot be combined"),
    (
        "prompt-file-missing",
        'schedule="@daily"\nprompt_file = "nope.md"\n',
        "prompt_file",
        2,
        "does not exist",
    ),
    ("enabled", OK + 'enabled = "yes"\n', "enabled", 3, "must be true or false"),
    ("timeout-zero", OK + "timeout = 0\n", "timeout", 3, "must be between 1s and 30d, got 0"),
    ("timeout-high", OK + 'timeout = "31d"\n', "timeout", 3, "between 1s and 30d, got '31d'"),
    ("timeout-words", OK + 'timeout = "5 minutes"\n', "timeout", 3, "expected a duration"),
    ("timeout-inf", OK + "timeout = inf\n", "timeout", 3, "between 1s and 30d, got inf"),
    ("timeout-nan", OK + "timeout = nan\n", "timeout", 3, "between 1s and 30d, got nan"),
    ("timeout-huge", OK + f'timeout = "{"9" * 400}d"\n', "timeout", 3, "got '99999"),
    ("timeout-neg", OK + "timeout = -5\n", "timeout", 3, "negative"),
    ("on-missed", OK + 'on_missed = "newest"\n', "on_missed", 3, "must be one of"),
    ("deadline", OK + 'missed_deadline = "0s"\n', "missed_deadline", 3, "between 1s and 366d"),
    ("deadline-high", OK + 'missed_deadline = "367d"\n', "missed_deadline", 3, "and 366d"),
    ("overlap", OK + 'overlap = "parallel"\n', "overlap", 3, "'skip', 'queue'"),
    ("retries-high", OK + "retries = 101\n", "retries", 3, "between 0 and 100"),
    ("retries-neg", OK + "retries = -1\n", "retries", 3, "between 0 and 100"),
    ("retries-float", OK + "retries = 1.5\n", "retries", 3, "must be an integer"),
    ("retries-bool", OK + "retries = true\n", "retries", 3, "must be an integer"),
    ("retry-delay", OK + 'retry_delay = "soon"\n', "retry_delay", 3, "expected a duration"),
    ("retry-delay-high", OK + 'retry_delay = "2d"\n', "retry_delay", 3, "between 0s and 1d"),
    ("jitter", OK + "jitter = -1\n", "jitter", 3, "negative"),
    ("jitter-high", OK + 'jitter = "99999999d"\n', "jitter", 3, "between 0s and 1d"),
    ("max-output-low", OK + 'max_output = "1B"\n', "max_output", 3, "between 1KB and 1GB"),
    ("max-output-high", OK + 'max_output = "2GB"\n', "max_output", 3, "between 1KB and 1GB"),
    ("max-output-type", OK + "max_output = 1.5\n", "max_output", 3, 'a size like "10MB"'),
    ("cwd-relative", OK + 'cwd = "work"\n', "cwd", 3, "absolute path"),
    ("cwd-missing", OK + 'cwd = "/nonexistent/dir"\n', "cwd", 3, "not an existing directory"),
    ("env-type", OK + 'env = "A=1"\n', "env", 3, "must be a table"),
    ("env-name", OK + '[env]\n"MY-VAR" = "1"\n', "env.MY-VAR", 4, "not a valid environment"),
    ("env-value", OK + "[env]\nPORT = 8080\n", "env.PORT", 4, 'write PORT = "..."'),
    ("env-reserved", OK + 'env = { BASSI_TASK = "x" }\n', "env.BASSI_TASK", 3, "set by bassi"),
    ("command-empty", OK + "command = []\n", "command", 3, "must not be an empty list"),
    ("command-str", OK + 'command = "ls -l"\n', "command", 3, "must be a list of strings"),
    (
        "command-item",
        OK + 'command = ["ls", ""]\n',
        "command",
        3,
        "item 2 must not be an empty string",
    ),
    ("command-int", OK + 'command = ["sleep", 5]\n', "command", 3, "item 2 must be a string"),
    ("command-nul", OK + 'command = ["a\\u0000b"]\n', "command", 3, "NUL"),
    ("agent-type", OK + 'agent = "sonnet"\n', "agent", 3, "must be a table"),
    ("turns", OK + "[agent]\nmax_turns = 0\n", "agent.max_turns", 4, "between 1 and 10000"),
    ("turns-high", OK + "agent.max_turns = 10001\n", "agent.max_turns", 3, "between 1 and 10000"),
    ("budget", OK + "[agent]\nmax_budget_usd = 0\n", "agent.max_budget_usd", 4, "greater than 0"),
    ("budget-high", OK + "agent.max_budget_usd = 1e9\n", "agent.max_budget_usd", 3, "at most 1000"),
    ("budget-nan", OK + "agent.max_budget_usd = nan\n", "agent.max_budget_usd", 3, "got nan"),
    ("budget-str", OK + 'agent.max_budget_usd = "2"\n', "agent.max_budget_usd", 3, "a number"),
    ("tools", OK + '[agent]\nallowed_tools = "Read"\n', "agent.allowed_tools", 4, "list"),
    ("perm", OK + '[agent]\npermission_mode = "yolo"\n', "agent.permission_mode", 4, "one of"),
    ("model", OK + 'agent = { model = "" }\n', "agent.model", 3, "must not be empty"),
    ("cli-path", OK + "[agent]\ncli_path = 3\n", "agent.cli_path", 4, "must be a string"),
    ("notify-on", OK + '[notify]\non = ["fail"]\n', "notify.on", 4, "did you mean 'failure'?"),
    ("notify-cmd", OK + "[notify]\ncommand = []\n", "notify.command", 4, "empty list"),
    ("notify-desk", OK + "[notify]\ndesktop = 1\n", "notify.desktop", 4, "true or false"),
    ("notify-key", OK + "[notify]\nmail = 1\n", "notify.mail", 4, "unknown key"),
    ("url", OK + 'healthcheck_url = "ftp://x/y"\n', "healthcheck_url", 3, "http:// or https://"),
    ("url-type", OK + "healthcheck_url = true\n", "healthcheck_url", 3, "must be a string"),
]


@pytest.mark.parametrize(
    ("body", "key", "line", "fragment"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES],
)
def test_error_names_file_key_and_line(
    write_task: WriteTask, body: str, key: str | None, line: int | None, fragment: str
) -> None:
    path = write_task("broken", body)
    with pytest.raises(TaskFileError) as info:
        load_task_file(path, CONFIG)
    e = info.value
    message = str(e)
    assert (e.path, e.key, e.line) == (str(path), key, line)
    where = str(path) if line is None else f"{path}:{line}"
    assert message.startswith(f"{where}: " + (f"key '{key}': " if key else ""))
    assert fragment in message
    assert "\n" not in message and "Traceback" not in message


def test_line_ignores_keys_inside_multiline_prompt(write_task: WriteTask) -> None:
    body = 'prompt = """\nschedule = "fake"\ntimeout = 0\n"""\nschedule = "@daily"\ntimeout = 0\n'
    with pytest.raises(TaskFileError) as info:
        load_task_file(write_task("t", body), CONFIG)
    assert (info.value.key, info.value.line) == ("timeout", 6)


@pytest.mark.parametrize("stem", ["Weekly", "-x", "has space", "a" * 65, "ünï"])
def test_bad_task_name(home: Home, stem: str) -> None:
    path = home.tasks_dir / f"{stem}.toml"
    path.write_text(OK)
    path.chmod(0o600)
    with pytest.raises(TaskFileError, match=r"file name gives the task name .* rename the file"):
        load_task_file(path, CONFIG)


def test_not_utf8(home: Home) -> None:
    path = home.tasks_dir / "bin.toml"
    path.write_bytes(b'schedule = "@daily"\nprompt = "caf\xe9"\n')
    path.chmod(0o600)
    with pytest.raises(TaskFileError, match=rf"^{path}:2: is not valid UTF-8"):
        load_task_file(path, CONFIG)


def test_missing_file(home: Home) -> None:
    with pytest.raises(TaskFileError, match="does not exist"):
        load_task_file(home.tasks_dir / "nope.toml", CONFIG)


# -- permissions: refused like cron and sshd refuse ----------------------------------------------


@pytest.mark.parametrize(
    ("mode", "who"), [(0o620, "group"), (0o602, "world"), (0o666, "group/world")]
)
def test_writable_by_others_is_refused(write_task: WriteTask, mode: int, who: str) -> None:
    path = write_task("t", OK)
    path.chmod(mode)
    with pytest.raises(TaskFileError) as info:
        load_task_file(path, CONFIG)
    assert str(info.value) == (
        f"{path}: is {who}-writable (mode {mode:04o}), so it is refused; run 'chmod go-w {path}'"
    )


def test_readable_by_others_is_fine(write_task: WriteTask) -> None:
    path = write_task("t", OK)
    path.chmod(0o644)
    assert load_task_file(path, CONFIG).name == "t"


def _owned_by_someone_else(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.getuid() == 0:
        os.chown(path, 65534, -1)
    else:  # cannot give a file away without root: pretend to be another user instead
        uid = os.getuid() + 1
        monkeypatch.setattr(os, "getuid", lambda: uid)


def test_owned_by_another_user_is_refused(
    write_task: WriteTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_task("t", OK)
    _owned_by_someone_else(path, monkeypatch)
    with pytest.raises(TaskFileError, match=r"is owned by uid \d+, not by you"):
        load_task_file(path, CONFIG)


def test_writable_prompt_file_is_refused(home: Home, write_task: WriteTask) -> None:
    prompt = home.tasks_dir / "p.md"
    prompt.write_text("do it")
    prompt.chmod(0o666)
    path = write_task("t", 'schedule = "@daily"\nprompt_file = "p.md"\n')
    with pytest.raises(
        TaskFileError, match=r":2: key 'prompt_file': .*p.md' is group/world-writable"
    ):
        load_task_file(path, CONFIG)


# -- the reloading loader ------------------------------------------------------------------------


def bump(path: Path, body: str | None = None) -> None:
    """Rewrite (or just touch) a file so its mtime moves forward for sure."""
    if body is not None:
        path.write_text(body)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_unchanged_files_are_not_parsed_again(
    home: Home, write_task: WriteTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in ("a", "b", "c"):
        write_task(n, OK)
    calls: list[Path] = []
    real = loader_mod.load_task_file

    def counting(path: Path, *args: object, **kw: object) -> object:
        calls.append(path)
        return real(path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(loader_mod, "load_task_file", counting)
    loader = TaskLoader(home, CONFIG)
    first = loader.load()
    assert sorted(first.tasks) == ["a", "b", "c"] and first.added == {"a", "b", "c"}
    assert len(calls) == 3
    second = loader.load()
    assert len(calls) == 3  # nothing re-read
    assert all(second.tasks[n] is first.tasks[n] for n in "abc")
    assert second.added == second.changed == second.removed == set()


def test_changed_file_is_parsed_again(home: Home, write_task: WriteTask) -> None:
    a = write_task("a", OK)
    write_task("b", OK)
    loader = TaskLoader(home, CONFIG)
    first = loader.load()
    bump(a, OK + 'timeout = "5m"\n')  # size and mtime change
    second = loader.load()
    assert loader.parses == 3
    assert second.changed == {"a"} and second.added == second.removed == set()
    assert second.tasks["a"].timeout_s == 300
    assert second.tasks["b"] is first.tasks["b"]


def test_touched_file_is_reparsed_but_not_reported_changed(
    home: Home, write_task: WriteTask
) -> None:
    a = write_task("a", OK)
    loader = TaskLoader(home, CONFIG)
    first = loader.load()
    bump(a)  # same content, new mtime
    second = loader.load()
    assert loader.parses == 2
    assert second.changed == set() and second.tasks["a"] is first.tasks["a"]


def test_same_size_edit_is_seen(home: Home, write_task: WriteTask) -> None:
    a = write_task("a", OK + "retries = 1\n")
    loader = TaskLoader(home, CONFIG)
    loader.load()
    bump(a, OK + "retries = 2\n")
    assert loader.load().tasks["a"].retries == 2


def test_removed_file(home: Home, write_task: WriteTask) -> None:
    a = write_task("a", OK)
    write_task("b", OK)
    loader = TaskLoader(home, CONFIG)
    loader.load()
    a.unlink()
    result = loader.load()
    assert set(result.tasks) == {"b"} and result.removed == {"a"}


def test_bad_file_among_good_ones(home: Home, write_task: WriteTask) -> None:
    write_task("good1", OK)
    write_task("broken", 'schedule = "61 * * * *"\nprompt = "x"\n')
    write_task("good2", OK)
    result = TaskLoader(home, CONFIG).load()
    assert set(result.tasks) == {"good1", "good2"}
    assert set(result.errors) == {"broken"}
    assert "broken.toml:1: key 'schedule'" in str(result.errors["broken"])


def test_file_turning_bad_is_dropped_and_reported_then_recovers(
    home: Home, write_task: WriteTask
) -> None:
    a = write_task("a", OK)
    loader = TaskLoader(home, CONFIG)
    loader.load()
    bump(a, OK + "retries = -1\n")
    bad = loader.load()
    assert "a" not in bad.tasks and bad.removed == {"a"}
    assert bad.errors["a"].key == "retries"
    again = loader.load()  # still bad, cached: reported again without re-reading
    assert again.errors["a"] is bad.errors["a"] and loader.parses == 2
    assert again.removed == set()
    bump(a, OK)
    fixed = loader.load()
    assert fixed.added == {"a"} and fixed.errors == {}


def test_chmod_alone_is_noticed(home: Home, write_task: WriteTask) -> None:
    a = write_task("a", OK)
    loader = TaskLoader(home, CONFIG)
    loader.load()
    a.chmod(0o660)  # mtime and size unchanged
    result = loader.load()
    assert "a" not in result.tasks and "group-writable" in str(result.errors["a"])


def test_prompt_file_and_cwd_are_watched(home: Home, write_task: WriteTask, tmp_path: Path) -> None:
    prompt = home.tasks_dir / "p.md"
    prompt.write_text("hello")
    work = tmp_path / "later"
    write_task("p", 'schedule = "@daily"\nprompt_file = "p.md"\n')
    write_task("w", f'schedule = "@daily"\ncommand = ["x"]\ncwd = "{work}"\n')
    loader = TaskLoader(home, CONFIG)
    first = loader.load()
    assert set(first.tasks) == {"p"} and first.errors["w"].key == "cwd"
    prompt.unlink()
    work.mkdir()
    second = loader.load()
    assert set(second.tasks) == {"w"} and second.errors["p"].key == "prompt_file"
    assert second.added == {"w"} and second.removed == {"p"}


def test_ignored_files(home: Home, write_task: WriteTask) -> None:
    write_task("real", OK)
    for name in (".hidden.toml", "_draft.toml", "notes.txt", "real.toml.bak", "README.md"):
        (home.tasks_dir / name).write_text("this is not toml = = =")
    (home.tasks_dir / "folder.toml").mkdir()
    result = TaskLoader(home, CONFIG).load()
    assert set(result.tasks) == {"real"} and result.errors == {}


def test_invalid_name_is_keyed_by_path(home: Home) -> None:
    path = home.tasks_dir / "Bad Name.toml"
    path.write_text(OK)
    path.chmod(0o600)
    result = TaskLoader(home, CONFIG).load()
    assert list(result.errors) == [str(path)]


def test_missing_tasks_dir(tmp_path: Path) -> None:
    result = TaskLoader(Home(tmp_path / "nothing"), CONFIG).load()
    assert result.tasks == {} and result.errors == {}


def test_unexpected_exception_in_one_file_does_not_stop_others(
    home: Home, write_task: WriteTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_task("good", OK)
    write_task("crash", 'schedule = "@daily"\nprompt = "x"\n')
    real = loader_mod.load_task_file

    def flaky(path: Path, *args: object, **kw: object) -> object:
        if path.name == "crash.toml":
            raise RuntimeError("boom")
        return real(path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(loader_mod, "load_task_file", flaky)
    result = TaskLoader(home, CONFIG).load()
    assert set(result.tasks) == {"good"}
    assert "could not be loaded (RuntimeError: boom)" in str(result.errors["crash"])
