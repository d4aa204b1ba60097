"""Notifications from the real daemon: health-check pings, notify programs, desktop banners."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from support import BIN_DIR, Start, runs, wait_for
from support.pings import PingServer, serve_pings

from bassi_schedd.config.paths import Home


@pytest.fixture
def server() -> Iterator[PingServer]:
    with serve_pings() as state:
        yield state


def log_lines(home: Home, event: str) -> list[dict[str, Any]]:
    if not home.log_file.exists():
        return []
    lines = [json.loads(x) for x in home.log_file.read_text().splitlines() if x.strip()]
    return [x for x in lines if x.get("event") == event]


def finished(home: Home, task: str, n: int) -> bool:
    rows = runs(home, task)
    return len(rows) == n and all(r["status"] not in ("queued", "running") for r in rows)


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o700)
    return path


def task_body(command: str, extra: str = "") -> str:
    return f"""
schedule = "0 0 1 1 *"
timezone = "UTC"
command = {command}
{extra}
"""


# -- health checks -------------------------------------------------------------------------------


def test_pings_for_success_failure_and_timeout(
    home: Home, write_task, daemon: Start, cli, server: PingServer
) -> None:
    url = server.url
    write_task("ok", task_body('["/bin/true"]', f'healthcheck_url = "{url}/ok"'))
    write_task("bad", task_body('["/bin/sh", "-c", "exit 3"]', f'healthcheck_url = "{url}/bad"'))
    write_task(
        "slow",
        task_body(
            '["/bin/sh", "-c", "sleep 30"]', f'healthcheck_url = "{url}/slow"\ntimeout = "1s"'
        ),
    )
    d = daemon()
    d.wait_ready()
    for name in ("ok", "bad", "slow"):
        assert cli("trigger", name).returncode == 0
    wait_for(lambda: len(server.paths) == 6, 20)
    by_task: dict[str, list[str]] = {}
    for p in server.paths:
        by_task.setdefault(p.split("/")[3], []).append(p.removeprefix("/ping/abc-123"))
    assert by_task == {
        "ok": ["/ok/start", "/ok"],
        "bad": ["/bad/start", "/bad/3"],  # healthchecks.io reads /<exit status> as a failure
        "slow": ["/slow/start", "/slow/fail"],
    }
    assert [r["status"] for r in runs(home, "slow")] == ["timeout"]
    wait_for(lambda: len(log_lines(home, "notify.sent")) == 6, 10)
    assert all(x["channel"] == "healthcheck" for x in log_lines(home, "notify.sent"))
    assert d.stop() == 0


def test_hanging_health_check_does_not_delay_other_runs(
    home: Home, write_task, daemon: Start, cli, server: PingServer
) -> None:
    server.hang = True
    write_task("pinged", task_body('["/bin/true"]', f'healthcheck_url = "{server.url}"'))
    write_task("other", task_body('["/bin/true"]'))
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "pinged").returncode == 0
    wait_for(lambda: server.paths, 10)  # the /start ping now hangs
    assert cli("trigger", "other").returncode == 0
    assert cli("trigger", "pinged").returncode == 0
    wait_for(lambda: finished(home, "other", 1) and finished(home, "pinged", 2), 10)
    for row in runs(home, "other") + runs(home, "pinged"):
        assert row["status"] == "success"
        requested = datetime.fromisoformat(str(row["scheduled_for"]))
        latency_s = (datetime.fromisoformat(str(row["started_at"])) - requested).total_seconds()
        assert latency_s < 1.0, row
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 15  # stopping gives up on the hanging ping after 5 s
    assert log_lines(home, "notify.failed")


# -- notify programs -----------------------------------------------------------------------------

RECORDER = """
cat > "$NOTIFY_OUT/$BASSI_RUN_ID.$BASSI_EVENT.json"
env > "$NOTIFY_OUT/$BASSI_RUN_ID.$BASSI_EVENT.env"
"""
FLAKY = (
    "seq 1 60; echo '# report' > \"$BASSI_RUN_DIR/result.md\"; "
    'if [ -f "$MARK" ]; then exit 0; fi; touch "$MARK"; exit 7'
)
FIELDS = {
    "task", "run_id", "status", "exit_code", "scheduled_for", "duration_s", "cost_usd",
    "result_md", "output_tail", "event", "trigger", "attempt", "started_at", "ended_at",
    "run_dir", "description",
}  # fmt: skip


def test_program_gets_the_record_and_recovered_fires_once(
    home: Home, write_task, daemon: Start, cli, tmp_path: Path
) -> None:
    out = tmp_path / "notified"
    out.mkdir()
    prog = script(tmp_path / "notify.sh", RECORDER)
    write_task(
        "flaky",
        task_body(
            json.dumps(["/bin/sh", "-c", FLAKY]),
            f"""
env = {{ NOTIFY_OUT = "{out}", MARK = "{tmp_path / "mark"}" }}
notify = {{ on = ["failure", "recovered", "success"], command = ["{prog}"] }}
""",
        ),
    )
    d = daemon(env={"NOT_FOR_NOTIFY": "daemon-only"})
    d.wait_ready()
    for n in (1, 2, 3):
        assert cli("trigger", "flaky").returncode == 0
        wait_for(lambda n=n: finished(home, "flaky", n), 10)
    wait_for(lambda: len(list(out.glob("*.json"))) == 3, 10)
    rows = runs(home, "flaky")
    assert [r["status"] for r in rows] == ["failed", "success", "success"]
    events = [next(out.glob(f"{r['run_id']}.*.json")).name.split(".")[1] for r in rows]
    assert events == ["failure", "recovered", "success"]

    first = rows[0]
    rec = json.loads((out / f"{first['run_id']}.failure.json").read_text())
    assert set(rec) == FIELDS
    assert (rec["task"], rec["status"], rec["exit_code"]) == ("flaky", "failed", 7)
    assert rec["run_id"] == first["run_id"] and rec["duration_s"] == first["duration_s"]
    assert rec["scheduled_for"] == datetime.fromisoformat(str(first["scheduled_for"])).isoformat()
    assert rec["cost_usd"] is None  # a command task has no agent cost
    assert rec["result_md"] == str(Path(str(first["run_dir"])) / "result.md")
    assert rec["output_tail"].splitlines() == [str(i) for i in range(11, 61)]
    env = dict(
        line.split("=", 1)
        for line in (out / f"{first['run_id']}.failure.env").read_text().splitlines()
        if "=" in line
    )
    assert env["BASSI_TASK"] == "flaky" and env["BASSI_RUN_ID"] == first["run_id"]
    assert env["BASSI_RUN_DIR"] == first["run_dir"] and env["BASSI_HOME"] == str(home.root)
    assert env["BASSI_SCHEDULED_FOR"] == rec["scheduled_for"]
    assert "NOT_FOR_NOTIFY" not in env  # the clean run environment, not the daemon's
    # The program writes its file before the daemon logs the delivery: wait for the log line.
    wait_for(lambda: len(log_lines(home, "notify.sent")) == 3, 10)
    sent = log_lines(home, "notify.sent")
    assert [x["kind"] for x in sent] == ["failure", "recovered", "success"]
    assert d.stop() == 0


def test_failing_program_and_schedd_toml_default(
    home: Home, write_task, daemon: Start, cli, tmp_path: Path
) -> None:
    out = tmp_path / "notified"
    out.mkdir()
    bad = script(tmp_path / "bad.sh", "echo 'pager unreachable' >&2\nexit 9\n")
    good = script(tmp_path / "good.sh", RECORDER)
    home.config_file.write_text(f'notify = {{ on = ["failure"], command = ["{good}"] }}\n')
    fail = '["/bin/sh", "-c", "exit 1"]'
    write_task("uses-default", task_body(fail, f'env = {{ NOTIFY_OUT = "{out}" }}'))
    write_task("own", task_body(fail, f'notify = {{ command = ["{bad}"] }}'))
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "uses-default").returncode == 0
    assert cli("trigger", "own").returncode == 0
    wait_for(lambda: log_lines(home, "notify.failed") and log_lines(home, "notify.sent"), 15)
    failed = log_lines(home, "notify.failed")
    assert [(x["task"], x["reason"], x["output"]) for x in failed] == [
        ("own", "exited with status 9", "pager unreachable")
    ]
    assert [x["task"] for x in log_lines(home, "notify.sent")] == ["uses-default"]
    assert len(list(out.glob("*.failure.json"))) == 1
    assert d.stop() == 0


HANGER = """
echo $$ > "$NOTIFY_OUT/prog.pid"
sleep 300 &
echo $! > "$NOTIFY_OUT/child.pid"
wait
"""


def test_hanging_program_is_killed_after_notify_timeout_and_scheduling_continues(
    home: Home, write_task, daemon: Start, cli, tmp_path: Path
) -> None:
    # 30 s by default (tests/unit/test_config.py); a short setting keeps the test quick.
    home.config_file.write_text('notify_timeout = "4s"\n')
    out = tmp_path / "out"
    out.mkdir()
    prog = script(tmp_path / "hang.sh", HANGER)
    write_task(
        "hangs",
        task_body(
            '["/bin/sh", "-c", "exit 1"]',
            f'env = {{ NOTIFY_OUT = "{out}" }}\nnotify = {{ command = ["{prog}"] }}',
        ),
    )
    write_task("other", task_body('["/bin/true"]'))
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "hangs").returncode == 0
    wait_for(lambda: (out / "child.pid").exists(), 10)
    t0 = time.monotonic()
    pids = [int((out / f).read_text()) for f in ("prog.pid", "child.pid")]
    for n in (1, 2, 3):  # runs go on while the notify program hangs
        assert cli("trigger", "other").returncode == 0
        wait_for(lambda n=n: finished(home, "other", n), 5)
    failed = wait_for(lambda: log_lines(home, "notify.failed"), 45)
    assert isinstance(failed, list)
    assert (
        failed[0]["task"] == "hangs" and failed[0]["reason"] == "killed after 4s without finishing"
    )
    assert 3 < time.monotonic() - t0 < 30

    def gone() -> bool:
        return not any(
            psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids
        )

    wait_for(gone, 10)
    assert d.stop() == 0


def test_stopping_the_daemon_kills_a_running_notify_program(
    home: Home, write_task, daemon: Start, cli, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    prog = script(tmp_path / "hang.sh", HANGER)
    write_task(
        "hangs",
        task_body(
            '["/bin/sh", "-c", "exit 1"]',
            f'env = {{ NOTIFY_OUT = "{out}" }}\nnotify = {{ command = ["{prog}"] }}',
        ),
    )
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "hangs").returncode == 0
    wait_for(lambda: (out / "child.pid").exists(), 10)
    pids = [int((out / f).read_text()) for f in ("prog.pid", "child.pid")]
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 10
    stopped = log_lines(home, "notify.failed")
    # The summary line and the worker's own line may come in either order.
    assert any(x.get("killed") == 1 for x in stopped), stopped
    wait_for(lambda: not any(psutil.pid_exists(p) for p in pids), 10)


def test_missed_times_make_one_notification(
    home: Home, write_task, daemon: Start, tmp_path: Path
) -> None:
    out = tmp_path / "notified"
    out.mkdir()
    prog = script(tmp_path / "notify.sh", RECORDER)
    write_task(
        "hourly",
        f"""
        schedule = "0 * * * *"
        timezone = "UTC"
        command = ["/bin/true"]
        on_missed = "skip"
        env = {{ NOTIFY_OUT = "{out}" }}
        notify = {{ on = ["missed"], command = ["{prog}"] }}
        """,
    )
    assert daemon(fake_at="2026-11-01 05:29:50", once=True).proc.wait(60) == 0
    d = daemon(fake_at="2026-11-01 09:20:00", once=True)
    assert d.proc.wait(60) == 0, d.output()
    assert [r["status"] for r in runs(home, "hourly")] == ["missed"] * 4
    records = [json.loads(p.read_text()) for p in out.glob("*.missed.json")]
    assert len(records) == 1
    assert records[0]["missed_count"] == 4 and records[0]["status"] == "missed"
    assert records[0]["scheduled_for"] == "2026-11-01T09:00:00+00:00"  # the newest


# -- desktop -------------------------------------------------------------------------------------


def test_desktop_notification_through_notify_send_on_the_daemon_path(
    home: Home, write_task, daemon: Start, cli, tmp_path: Path
) -> None:
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    argv_file = tmp_path / "argv"
    script(fake_bin / "notify-send", f"printf '%s\\0' \"$@\" > '{argv_file}'\n")
    write_task(
        "report",
        task_body(
            '["/bin/sh", "-c", "exit 2"]',
            'description = "Nightly report"\nnotify = { desktop = true }',
        ),
    )
    path = f"{fake_bin}{os.pathsep}{BIN_DIR}{os.pathsep}/usr/bin:/bin"
    d = daemon(env={"PATH": path})
    d.wait_ready()
    assert cli("trigger", "report").returncode == 0
    wait_for(argv_file.exists, 10)
    argv = wait_for(lambda: argv_file.read_text().split("\0")[:-1], 5)
    assert isinstance(argv, list)
    assert "bassi-schedd: report failed" in argv
    body = argv[-1]
    assert "exit code 2" in body and "Nightly report" in body
    assert d.stop() == 0


def test_desktop_without_notify_send_logs_one_line(
    home: Home, write_task, daemon: Start, cli, tmp_path: Path
) -> None:
    write_task("report", task_body('["/bin/sh", "-c", "exit 2"]', "notify = { desktop = true }"))
    d = daemon(env={"PATH": str(BIN_DIR)})  # no notify-send, no osascript
    d.wait_ready()
    assert cli("trigger", "report").returncode == 0
    wait_for(lambda: finished(home, "report", 1), 10)
    assert cli("trigger", "report").returncode == 0
    wait_for(lambda: finished(home, "report", 2), 10)
    assert d.stop() == 0
    assert len(log_lines(home, "notify.skipped")) == 1
    assert log_lines(home, "notify.failed") == [] and log_lines(home, "notify.sent") == []
    assert "Traceback" not in d.output()


def test_notify_program_of_a_run_with_leftovers_is_not_swept(
    home: Home, write_task, daemon: Start, cli, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    # The program outlives the leftovers' kill grace: the sweep must not take it for one.
    home.config_file.write_text('kill_grace = "2s"\n')
    prog = script(tmp_path / "slow.sh", 'sleep 4\necho done > "$NOTIFY_OUT/done"\n')
    write_task(
        "leaky",
        task_body(
            '["/bin/sh", "-c", "sleep 30 & exit 1"]',
            f'env = {{ NOTIFY_OUT = "{out}" }}\nnotify = {{ command = ["{prog}"] }}',
        ),
    )
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "leaky").returncode == 0
    wait_for(lambda: log_lines(home, "notify.sent") or log_lines(home, "notify.failed"), 30)
    assert d.stop() == 0
    assert (out / "done").exists(), [x.get("reason") for x in log_lines(home, "notify.failed")]
