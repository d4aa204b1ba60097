"""``list``, ``next``, ``check`` and ``new`` through the real CLI (a subprocess per call)."""

from __future__ import annotations

import itertools
import json
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bassi_schedd.config.loader import load_task_file
from bassi_schedd.config.paths import Home
from bassi_schedd.core.spec import DaemonConfig
from bassi_schedd.store.state import StateDB

Cli = Callable[..., object]
WriteTask = Callable[[str, str], Path]


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bassi-schedd: "), stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


@pytest.fixture
def tasks(home: Home, write_task: WriteTask) -> Home:
    """good (Berlin, daily), paused, once (one-shot, done in the DB), script, broken."""
    write_task(
        "good",
        'schedule = "daily 09:00"\ntimezone = "Europe/Berlin"\nprompt = "Report {date}"\n',
    )
    write_task("paused", 'schedule = "@hourly"\nenabled = false\ncommand = ["/bin/true"]\n')
    write_task("once", 'at = "2030-01-01T00:00"\ncommand = ["/bin/true"]\n')
    write_task("script", 'schedule = "every 15m"\ncommand = ["/bin/true"]\n')
    write_task("broken", 'schedule = "0 25 * * *"\ncommand = ["/bin/true"]\n')
    return home


def record_history(home: Home) -> None:
    db = StateDB.open(home.state_db)
    try:
        start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
        db.start_manual_run("good", "r1", lambda _: "/tmp/r1", 1, None, start)
        db.end_manual_run("r1", "failed", 1, start + timedelta(seconds=5))
        db.start_manual_run("once", "r2", lambda _: "/tmp/r2", 1, None, start)
        db.end_manual_run("r2", "success", 0, start + timedelta(seconds=5))
        with db.tx() as tx:
            tx.set_done("once")
    finally:
        db.close()


# -- list ---------------------------------------------------------------------------------------


def test_list_empty(cli: Cli) -> None:
    r = cli("list")
    assert r.returncode == 0 and "no tasks in" in r.stdout  # type: ignore[attr-defined]


def test_list_table(tasks: Home, cli: Cli) -> None:
    record_history(tasks)
    r = cli("list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SCHEDULE", "ZONE", "NEXT", "RUN", "LAST", "STATE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert list(rows) == ["broken", "good", "once", "paused", "script"]
    # columns are aligned: every row's STATE starts where the header's does
    col = lines[0].index("STATE")
    assert all(line[col - 2 : col] == "  " and line[col] != " " for line in lines[1:])
    assert rows["good"].split()[-2:] == ["failed", "enabled"]
    assert "daily 09:00" in rows["good"] and "Europe/Berlin" in rows["good"]
    assert " 09:00 CE" in rows["good"]  # next run shown in the task's zone (CET or CEST)
    assert rows["once"].split()[-2:] == ["success", "done"]
    assert rows["paused"].split()[-2:] == ["-", "paused"]
    assert rows["script"].split()[-2:] == ["-", "enabled"] and "UTC" in rows["script"]
    assert rows["broken"].split()[1:] == ["-", "-", "-", "-", "invalid"]
    assert r.stderr == "1 task file is invalid; run 'bassi-schedd check' for details\n"


def test_list_json(tasks: Home, cli: Cli) -> None:
    record_history(tasks)
    r = cli("list", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    keys = {
        "name", "file", "description", "schedule", "timezone", "kind", "state", "next_run",
        "last_status", "last_run_at", "error", "over_budget",
    }  # fmt: skip
    assert all(set(row) == keys for row in rows.values())
    good = rows["good"]
    assert (good["state"], good["kind"], good["timezone"]) == ("enabled", "agent", "Europe/Berlin")
    nxt = datetime.fromisoformat(good["next_run"])
    assert nxt.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M") == "09:00"
    assert nxt > datetime.now(UTC)
    assert (good["last_status"], good["last_run_at"]) == ("failed", "2026-01-05T08:00:00+00:00")
    assert rows["once"]["state"] == "done" and rows["once"]["next_run"] is None
    assert rows["paused"]["state"] == "paused" and rows["paused"]["next_run"] is None
    assert rows["script"]["kind"] == "command" and rows["script"]["last_status"] is None
    broken = rows["broken"]
    assert broken["state"] == "invalid" and broken["schedule"] is None
    assert broken["file"].endswith("broken.toml")
    assert "broken.toml:1: key 'schedule'" in broken["error"]


def test_list_without_state_db_shows_dashes(tasks: Home, cli: Cli) -> None:
    r = cli("list", "--json")
    assert {row["last_status"] for row in json.loads(r.stdout)} == {None}
    assert not tasks.state_db.exists()  # listing never creates the daemon's DB


def test_list_with_bad_config(home: Home, cli: Cli) -> None:
    home.config_file.write_text("max_concurrent = 0\n")
    home.config_file.chmod(0o600)
    r = cli("list")
    assert r.returncode == 1
    assert_one_line_error(r.stderr, "schedd.toml:1: key 'max_concurrent'")


# -- next ---------------------------------------------------------------------------------------


def test_next_in_task_zone_with_local_zone_in_brackets(tasks: Home, cli: Cli) -> None:
    r = cli("next", "good", "-n", "3", env={"TZ": "America/New_York"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 3
    days = []
    for line in lines:
        task_part, local_part = line.split("  [")
        _, day, hm, abbr = task_part.split()
        assert hm == "09:00" and abbr in ("CET", "CEST")
        assert local_part.endswith(("EST]", "EDT]"))
        days.append(datetime.strptime(day, "%Y-%m-%d").date())
    assert [(b - a).days for a, b in itertools.pairwise(days)] == [1, 1]


def test_next_without_brackets_when_zones_match(tasks: Home, cli: Cli) -> None:
    r = cli("next", "good", "-n", "2", env={"TZ": "Europe/Berlin"})
    assert r.returncode == 0 and "[" not in r.stdout and len(r.stdout.splitlines()) == 2


def test_next_every_interval(tasks: Home, cli: Cli) -> None:
    r = cli("next", "script", "-n", "4")
    times = [
        datetime.strptime(" ".join(x.split()[1:3]), "%Y-%m-%d %H:%M") for x in r.stdout.splitlines()
    ]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(times)] == [900] * 3
    assert all(t.minute % 15 == 0 for t in times)


def test_next_paused_task_says_so(tasks: Home, cli: Cli) -> None:
    r = cli("next", "paused", "-n", "1")
    assert r.returncode == 0 and "paused" in r.stderr and len(r.stdout.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "code", "fragments"),
    [
        (("next", "nope"), 1, ("no task named 'nope'",)),
        (("next", "../etc/passwd"), 1, ("no task named",)),
        (("next", "good", "-n", "0"), 2, ("-n must be between 1 and 1000",)),
        (("next", "broken"), 1, ("broken.toml:1: key 'schedule'", "hour must be 0-23")),
    ],
)
def test_next_errors(
    tasks: Home, cli: Cli, args: tuple[str, ...], code: int, fragments: tuple[str, ...]
) -> None:
    r = cli(*args)
    assert r.returncode == code and r.stdout == ""
    assert_one_line_error(r.stderr, *fragments)


# -- check --------------------------------------------------------------------------------------


def test_check_all_ok(home: Home, write_task: WriteTask, cli: Cli) -> None:
    write_task("a", 'schedule = "@daily"\nprompt = "x"\n')
    write_task("b", 'schedule = "@daily"\ncommand = ["/bin/true"]\n')
    home.config_file.write_text("max_concurrent = 2\n")
    home.config_file.chmod(0o600)
    r = cli("check")
    assert r.returncode == 0, r.stdout
    assert r.stdout.splitlines() == ["ok schedd.toml", "ok a", "ok b"]


def test_check_reports_every_error_and_exits_1(
    tasks: Home, write_task: WriteTask, cli: Cli
) -> None:
    write_task("typo", 'schedule = "@daily"\npromt = "x"\n')
    r = cli("check")
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr
    lines = r.stdout.splitlines()
    errors = [x for x in lines if x.startswith("error ")]
    assert len(errors) == 2
    assert "broken.toml:1: key 'schedule': bad cron expression" in errors[0]
    assert "typo.toml:2: key 'promt': unknown key; did you mean 'prompt'?" in errors[1]
    assert {x for x in lines if x.startswith("ok ")} == {
        "ok good", "ok once", "ok paused", "ok script",
    }  # fmt: skip


def test_check_named_files(tasks: Home, cli: Cli, tmp_path: Path) -> None:
    outside = tmp_path / "draft.toml"
    outside.write_text('schedule = "@weekly"\nprompt = "x"\n')
    outside.chmod(0o600)
    r = cli("check", str(outside), "good")
    assert (r.returncode, r.stdout.splitlines()) == (0, ["ok draft", "ok good"])
    r = cli("check", "script", str(tmp_path / "missing.toml"))
    assert r.returncode == 1
    assert r.stdout.splitlines()[0] == "ok script"
    assert r.stdout.splitlines()[1] == f"error {tmp_path / 'missing.toml'}: does not exist"


def test_check_bad_config_and_refused_file(home: Home, write_task: WriteTask, cli: Cli) -> None:
    home.config_file.write_text('timezone = "Mars/Olympus"\n')
    home.config_file.chmod(0o600)
    path = write_task("shared", 'schedule = "@daily"\nprompt = "x"\n')
    path.chmod(0o664)
    r = cli("check")
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        f"error {home.config_file}:1: key 'timezone': unknown time zone 'Mars/Olympus' "
        "(use an IANA name like 'Europe/Berlin')",
        f"error {path}: is group-writable (mode 0664), so it is refused; run 'chmod go-w {path}'",
    ]


# -- new ----------------------------------------------------------------------------------------


def test_new_prompt_task(home: Home, cli: Cli) -> None:
    prompt = 'Summarise {date}.\nReply as JSON {"ok": true}.'
    r = cli(
        "new", "weekly", "--schedule", "0 9 * * MON", "--timezone", "Europe/Berlin",
        "--description", "Weekly report", "--prompt", prompt,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    path = home.tasks_dir / "weekly.toml"
    assert r.stdout.startswith(f"created {path}; next run ")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    spec = load_task_file(path, DaemonConfig(timezone="UTC"))
    assert (spec.description, spec.schedule.text, spec.timezone) == (
        "Weekly report",
        "0 9 * * MON",
        "Europe/Berlin",
    )
    assert spec.prompt == prompt
    assert cli("check", "weekly").returncode == 0


def test_new_command_and_prompt_file(home: Home, cli: Cli) -> None:
    r = cli("new", "backup", "--schedule", "every 2h", "--command", "/bin/echo", "--quick", "x y")
    assert r.returncode == 0, r.stderr
    spec = load_task_file(home.tasks_dir / "backup.toml", DaemonConfig(timezone="UTC"))
    assert spec.command == ("/bin/echo", "--quick", "x y")
    (home.tasks_dir / "notes.md").write_text("Notes for {date}")
    r = cli("new", "notes", "--schedule", "weekdays 08:30", "--prompt-file", "notes.md")
    assert r.returncode == 0, r.stderr
    spec = load_task_file(home.tasks_dir / "notes.toml", DaemonConfig(timezone="UTC"))
    assert spec.prompt_file == home.tasks_dir / "notes.md"


def test_new_refuses_to_overwrite(home: Home, write_task: WriteTask, cli: Cli) -> None:
    path = write_task("taken", 'schedule = "@daily"\nprompt = "original"\n')
    before = path.read_bytes()
    r = cli("new", "taken", "--schedule", "@hourly", "--prompt", "new")
    assert r.returncode == 1
    assert_one_line_error(r.stderr, f"{path} already exists")
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("Bad", "--schedule", "@daily", "--prompt", "x"), ("'Bad' is not a valid task name",)),
        (("_x", "--schedule", "@daily", "--prompt", "x"), ("not a valid task name",)),
        (("t", "--schedule", "0 9 * *", "--prompt", "x"), ("key 'schedule'", "expected 5 fields")),
        (("t", "--schedule", "@daily", "--prompt", " "), ("key 'prompt': must not be empty",)),
        (("t", "--schedule", "@daily", "--timezone", "Berlin", "--prompt", "x"), ("'Berlin'",)),
        (("t", "--schedule", "@daily", "--prompt-file", "none.md"), ("key 'prompt_file'",)),
        (("t", "--schedule", "@daily", "--command"), ("--command needs the program",)),
        (("t", "--schedule", "@daily"), ("one of the arguments",)),
        (("t", "--prompt", "x"), ("--schedule",)),
    ],
)
def test_new_usage_errors_write_nothing(
    home: Home, cli: Cli, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    r = cli("new", *args)
    assert r.returncode == 2, r.stderr
    assert_one_line_error(r.stderr, *fragments)
    assert list(home.tasks_dir.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [("run", "--once"), ("new", "x", "--schedule", "@daily", "--command", "true")],
    ids=["run", "new"],
)
def test_a_home_that_cannot_be_created_is_one_sentence(
    home: Home, cli, tmp_path: Path, args: tuple[str, ...]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = cli("--home", str(blocker / "home"), *args)
    assert r.returncode == 1
    assert r.stderr == (
        f"bassi-schedd: cannot create the folder {blocker / 'home'} "
        f"(BASSI_HOME {blocker / 'home'}): Not a directory\n"
    )


def test_unforeseen_file_trouble_is_one_sentence_naming_the_file() -> None:
    import bassi_schedd.cli.main as cli_mod

    def boom(args: object, home: object) -> int:
        raise PermissionError(13, "Permission denied", "/some/where/schedd.toml")

    import contextlib
    import io
    import types

    fake = types.SimpleNamespace(main=boom)
    err = io.StringIO()
    with (
        pytest.MonkeyPatch.context() as mp,
        contextlib.redirect_stderr(err),
    ):
        mp.setattr(cli_mod.importlib, "import_module", lambda name: fake)
        rc = cli_mod.main(["list"])
    assert rc == 1
    assert err.getvalue() == "bassi-schedd: Permission denied (/some/where/schedd.toml)\n"
