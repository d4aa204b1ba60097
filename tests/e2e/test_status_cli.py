"""``status``: the real CLI with and without the real daemon, plus the gathering logic."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psutil
import pytest
from support import CliResult, Start, db_rows, wait_for

from bassi_schedd import __version__
from bassi_schedd.cli.status import render
from bassi_schedd.config.paths import Home
from bassi_schedd.ops.status import STALE_TICK_S, classify_supervisor, gather
from bassi_schedd.store.lock import PidLock
from bassi_schedd.store.state import StateDB

Cli = Callable[..., CliResult]

YEARLY = 'schedule = "0 0 1 1 *"\ntimezone = "UTC"\n'
JSON_KEYS = {
    "over_budget",
    "home",
    "version",
    "now",
    "daemon",
    "last_tick",
    "last_tick_age_s",
    "stale",
    "tasks",
    "paused",
    "invalid",
    "config_error",
    "running",
    "queued",
    "next_run",
}
DAEMON_KEYS = {"running", "pid", "started_at", "uptime_s", "rss_bytes", "supervisor", "version"}
RUNNING_KEYS = {"task", "run_id", "trigger", "scheduled_for", "started_at", "elapsed_s", "pid"}


def _first_of(month: int, now: datetime) -> datetime:
    at = datetime(now.year, month, 1, tzinfo=UTC)
    return at if at > now else at.replace(year=now.year + 1)


@pytest.fixture
def tasks(write_task: Callable[[str, str], object]) -> None:
    """Two enabled tasks (Jan 1 and Jul 1), one paused, one invalid."""
    write_task("newyear", YEARLY + 'command = ["/bin/sh", "-c", "sleep 30"]\n')
    write_task("midyear", 'schedule = "0 0 1 7 *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    write_task("held", YEARLY + 'command = ["/bin/true"]\nenabled = false\n')
    write_task("broken", 'schedule = "not a schedule"\ncommand = ["/bin/true"]\n')


def test_without_a_daemon_exit_3_and_the_rest_is_shown(home: Home, cli: Cli, tasks: None) -> None:
    r = cli("status")
    assert r.returncode == 3, r.stderr
    assert "daemon:     not running" in r.stdout
    assert "never (no state database yet)" in r.stdout
    assert "3 loaded: 2 enabled, 1 paused, 0 done, 1 invalid" in r.stdout
    assert "paused: held" in r.stdout
    assert "invalid broken:" in r.stdout and "not a schedule" in r.stdout
    assert not home.state_db.exists()  # a read-only command creates no state

    r = cli("status", "--json")
    assert r.returncode == 3
    doc = json.loads(r.stdout)
    assert set(doc) == JSON_KEYS and set(doc["daemon"]) == DAEMON_KEYS
    assert doc["daemon"] == dict.fromkeys(DAEMON_KEYS) | {"running": False}
    assert doc["last_tick"] is None and doc["running"] == [] and doc["queued"] == 0
    assert doc["tasks"] == {"loaded": 3, "enabled": 2, "paused": 1, "done": 0, "invalid": 1}
    assert doc["paused"] == ["held"]
    assert [i["task"] for i in doc["invalid"]] == ["broken"]
    now = datetime.fromisoformat(doc["now"])
    first = min((_first_of(1, now), "newyear"), (_first_of(7, now), "midyear"))
    assert doc["next_run"] == {"task": first[1], "at": first[0].isoformat()}
    assert doc["version"] == __version__ and doc["home"] == str(home.root)


def test_with_a_running_daemon_and_after_it_was_killed(
    home: Home, cli: Cli, daemon: Start, tasks: None
) -> None:
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "newyear").returncode == 0
    row = wait_for(
        lambda: db_rows(home, "SELECT * FROM runs WHERE status = 'running' AND pid IS NOT NULL"), 10
    )[0]  # type: ignore[index]
    try:
        r = cli("status", "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert set(doc) == JSON_KEYS
        dmn = doc["daemon"]
        assert dmn["running"] is True and dmn["pid"] == d.pid
        assert dmn["supervisor"] == "manual" and dmn["version"] == __version__
        assert 0 <= dmn["uptime_s"] < 60 and dmn["rss_bytes"] > 1_000_000
        assert datetime.fromisoformat(dmn["started_at"]) <= datetime.fromisoformat(doc["now"])
        assert 0 <= doc["last_tick_age_s"] < 65 and doc["stale"] is False
        assert [set(x) for x in doc["running"]] == [RUNNING_KEYS]
        run = doc["running"][0]
        assert (run["task"], run["run_id"], run["trigger"]) == ("newyear", row["run_id"], "manual")
        assert run["pid"] == row["pid"] and 0 <= run["elapsed_s"] < 30
        assert doc["queued"] == 0

        r = cli("status")
        assert r.returncode == 0
        assert f"running (pid {d.pid}, up " in r.stdout and "started by hand" in r.stdout
        assert f"newyear  {row['run_id']}  manual  since " in r.stdout
        assert "running:    1" in r.stdout and "ago)" in r.stdout

        d.stop(signal.SIGKILL)
        r = cli("status")
        assert r.returncode == 3 and "not running" in r.stdout
        assert str(row["run_id"]) in r.stdout and "the next one adopts these runs" in r.stdout
    finally:
        os.killpg(int(row["pid"]), signal.SIGKILL)  # type: ignore[call-overload]


def test_unreadable_state_is_one_sentence(home: Home, cli: Cli, write_task) -> None:
    write_task("t", YEARLY + 'command = ["/bin/true"]\n')
    home.state_db.write_bytes(b"this is not sqlite" * 100)
    # Readers, the daemon itself and a foreground run all stop with the same sentence.
    for args in (
        ("status",),
        ("status", "--json"),
        ("history",),
        ("run", "--once"),
        ("execute", "t"),
    ):
        r = cli(*args)
        assert r.returncode == 1, args
        assert r.stderr.startswith("bassi-schedd: cannot read the state database"), r.stderr
        assert r.stderr.count("\n") == 1, r.stderr
    assert home.state_db.read_bytes().startswith(b"this is not sqlite")


def test_bad_schedd_toml_is_reported_not_fatal(home: Home, cli: Cli, write_task) -> None:
    write_task("t", YEARLY + 'command = ["/bin/true"]\n')
    home.config_file.write_text("max_concurrent = 0\n")
    r = cli("status")
    assert r.returncode == 3
    assert "schedd.toml ignored:" in r.stdout and "max_concurrent" in r.stdout
    assert "1 loaded" in r.stdout


# -- gathering in-process: a lock we hold stands in for the daemon -----------------------------


@pytest.fixture
def fake_daemon(home: Home) -> Iterator[None]:
    lock = PidLock(home)
    lock.acquire()
    yield
    lock.release()


def test_stale_tick_and_version_mismatch_are_flagged(
    home: Home, write_task, fake_daemon: None
) -> None:
    write_task("t", YEARLY + 'command = ["/bin/true"]\n')
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    db = StateDB.open(home.state_db)
    db.set_meta(
        {
            "last_tick": (now - timedelta(seconds=STALE_TICK_S + 5)).isoformat(),
            "daemon_pid": str(os.getpid()),
            "version": "0.0.1",
        }
    )
    db.close()
    st = gather(home, now)
    assert st.daemon is not None and st.daemon.pid == os.getpid()
    assert st.stale and st.to_json()["stale"] is True
    text = render(st)
    assert "has not ticked for too long" in text
    assert f"the daemon runs version 0.0.1; restart it to use {__version__}" in text
    # A fresh tick is not stale.
    db = StateDB.open(home.state_db)
    db.set_meta({"last_tick": (now - timedelta(seconds=30)).isoformat()})
    db.close()
    assert not gather(home, now).stale


def test_done_one_shot_is_counted_and_not_next(home: Home, write_task) -> None:
    write_task("once", 'at = "2026-05-01T10:00"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    write_task("later", 'schedule = "0 0 1 8 *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    now = datetime(2026, 4, 1, tzinfo=UTC)
    assert gather(home, now).next_run == ("once", datetime(2026, 5, 1, 10, tzinfo=UTC))
    db = StateDB.open(home.state_db)
    with db.tx() as tx:
        tx.first_seen("once", now)
        tx.set_done("once")
    db.close()
    st = gather(home, now)
    assert st.done == ["once"]
    assert st.next_run == ("later", datetime(2026, 8, 1, tzinfo=UTC))
    assert st.daemon is None and st.to_json()["tasks"]["done"] == 1


def test_nothing_scheduled(home: Home) -> None:
    st = gather(home)
    assert st.next_run is None and "next run:   none scheduled" in render(st)


@pytest.mark.parametrize(
    ("platform", "env", "parent", "ppid", "unit", "expected"),
    [
        ("linux", {}, "systemd", 1234, "user@1000.service", "systemd"),
        ("linux", {"INVOCATION_ID": "x"}, "sh", 99, "bassi-schedd.service", "systemd"),
        # a terminal started by systemd: its shells inherit INVOCATION_ID, the unit is not ours
        ("linux", {"INVOCATION_ID": "x"}, "bash", 99, "gnome-terminal-server.service", "manual"),
        ("linux", {}, "bash", 99, None, "manual"),
        ("darwin", {"XPC_SERVICE_NAME": "com.bassi.schedd"}, "", 1, None, "launchd"),
        ("darwin", {}, "launchd", 1, None, "launchd"),
        ("darwin", {}, "zsh", 500, None, "manual"),
    ],
)
def test_classify_supervisor(
    platform: str, env: dict[str, str], parent: str, ppid: int, unit: str | None, expected: str
) -> None:
    assert classify_supervisor(platform, env, parent, ppid, unit) == expected


def test_supervisor_of_this_process_is_manual() -> None:
    from bassi_schedd.ops.status import supervisor_of

    assert supervisor_of(psutil.Process()) == "manual"
