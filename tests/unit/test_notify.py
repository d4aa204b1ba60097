"""The Notifier on its own: real HTTP server, real notify programs, real process groups."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
from support import wait_for
from support.pings import PingServer, serve_pings

from bassi_schedd.config.paths import Home
from bassi_schedd.core.schedule import parse_schedule
from bassi_schedd.core.spec import DaemonConfig, NotifySpec, TaskSpec
from bassi_schedd.notify import notifier as notify_mod
from bassi_schedd.notify.delivery import ping_url, redact_url
from bassi_schedd.notify.notifier import Notifier
from bassi_schedd.notify.record import (
    desktop_text,
    end_event,
    healthcheck_suffix,
    notify_problems,
    output_tail,
    run_record,
)
from bassi_schedd.store.state import RunRow

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


# -- helpers -------------------------------------------------------------------------------------


class LogRecorder:
    """Stands in for the module's structlog logger: keeps (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def _add(self, level: str, event: str, **kw: Any) -> None:
        with self._lock:
            self.lines.append((level, event, kw))

    def info(self, event: str, **kw: Any) -> None:
        self._add("info", event, **kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._add("warning", event, **kw)

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [kw for _, e, kw in self.lines if e == name]


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> LogRecorder:
    rec = LogRecorder()
    monkeypatch.setattr(notify_mod, "log", rec)
    return rec


def make_task(tmp_path: Path, name: str = "report", **kw: Any) -> TaskSpec:
    kw.setdefault("cwd", tmp_path)
    return TaskSpec(
        name=name,
        path=tmp_path / "tasks" / f"{name}.toml",
        schedule=parse_schedule("@daily"),
        timezone="UTC",
        description="Weekly report",
        command=("/bin/true",),
        **kw,
    )


def make_run(
    home: Home, task: str = "report", status: str = "success", exit_code: int | None = 0, **kw: Any
) -> RunRow:
    run_id = kw.pop("run_id", f"20261101T090000Z-{os.urandom(3).hex()}")
    run_dir = home.run_dir(task, run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "run_id": run_id,
        "task": task,
        "trigger": "schedule",
        "scheduled_for": T0,
        "started_at": T0 + timedelta(seconds=1),
        "ended_at": T0 + timedelta(seconds=4),
        "duration_s": 3.0,
        "status": status,
        "exit_code": exit_code,
        "attempt": 1,
        "cost_usd": 0.25,
        "input_tokens": None,
        "output_tokens": None,
        "run_dir": str(run_dir),
    }
    values.update(kw)
    return RunRow(**values)


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o700)
    return path


@pytest.fixture
def server() -> Iterator[PingServer]:
    with serve_pings() as state:
        yield state


@pytest.fixture
def make_notifier(home: Home) -> Iterator[Any]:
    """Build Notifiers; every one is closed at the end of the test."""
    made: list[Notifier] = []

    def _make(config: DaemonConfig | None = None, **kw: Any) -> Notifier:
        n = Notifier(home, config or DaemonConfig(timezone="UTC"), **kw)
        made.append(n)
        return n

    yield _make
    for n in made:
        n.close(5.0)


# -- pure parts ----------------------------------------------------------------------------------


def test_end_event_recovered_only_after_a_failure() -> None:
    on = ("success", "failure", "timeout", "recovered")
    assert end_event("success", False, on) == "recovered"
    assert end_event("success", True, on) == "success"
    assert end_event("success", None, on) == "success"  # first run ever: nothing to recover
    assert end_event("failed", True, on) == "failure"
    assert end_event("timeout", False, on) == "timeout"
    assert end_event("success", False, ("success",)) == "success"
    assert end_event("success", False, ("failure",)) is None
    assert end_event("success", True, ("recovered",)) is None
    for status in ("interrupted", "replaced", "lost", "missed"):
        assert end_event(status, False, on) is None


def test_healthcheck_pings_for_each_outcome() -> None:
    assert healthcheck_suffix("success", 0) == ""
    assert healthcheck_suffix("failed", 3) == "3"
    assert healthcheck_suffix("failed", None) == "fail"  # could not start: no exit code
    assert healthcheck_suffix("timeout", 143) == "fail"
    assert healthcheck_suffix("interrupted", None) is None
    assert ping_url("https://hc-ping.com/u-1", "start") == "https://hc-ping.com/u-1/start"
    assert ping_url("https://hc-ping.com/u-1/", "fail") == "https://hc-ping.com/u-1/fail"
    assert ping_url("https://h.io/p/u?create=1", "7") == "https://h.io/p/u/7?create=1"
    assert ping_url("https://hc-ping.com/u-1", "") == "https://hc-ping.com/u-1"


def test_a_ping_url_is_logged_as_scheme_and_host_only() -> None:
    assert redact_url("https://hc-ping.com/u-1") == "https://hc-ping.com/…"
    # user:password@ is as secret as the path; the port is not
    assert redact_url("https://bob:pa55@hc.example:8443/u-1?k=v") == "https://hc.example:8443/…"
    assert redact_url("http://[::1]:8080/u-1") == "http://[::1]:8080/…"


def test_run_record_has_every_documented_field(home: Home, tmp_path: Path) -> None:
    task = make_task(tmp_path)
    run = make_run(home, status="failed", exit_code=3)
    run_dir = Path(str(run.run_dir))
    (run_dir / "output.log").write_text("".join(f"line {i}\n" for i in range(120)))
    (run_dir / "result.md").write_text("# done\n")
    rec = run_record(task, run, "failure")
    assert rec["task"] == "report" and rec["run_id"] == run.run_id
    assert (rec["status"], rec["exit_code"], rec["event"]) == ("failed", 3, "failure")
    assert rec["scheduled_for"] == "2026-11-01T09:00:00+00:00"
    assert rec["duration_s"] == 3.0 and rec["cost_usd"] == 0.25
    assert rec["result_md"] == str(run_dir / "result.md")
    tail = rec["output_tail"].splitlines()
    assert len(tail) == 50 and tail[0] == "line 70" and tail[-1] == "line 119"
    (run_dir / "result.md").unlink()
    assert run_record(task, run, "failure")["result_md"] is None
    assert "missed_count" not in rec
    assert run_record(task, run, "missed", 4)["missed_count"] == 4
    json.dumps(rec)  # JSON-ready


def test_output_tail_is_bounded(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    log.write_text("x" * 100_000 + "\nlast\n")
    tail = output_tail(log)
    assert len(tail) <= 16_000 and tail.endswith("last\n")
    assert output_tail(tmp_path / "missing.log") == ""


def test_desktop_text_names_task_and_outcome(home: Home, tmp_path: Path) -> None:
    title, body = desktop_text(
        make_task(tmp_path), make_run(home, "report", "failed", 2), "failure"
    )
    assert title == "bassi-schedd: report failed"
    assert "exit code 2" in body and "after 3s" in body and "Weekly report" in body


def test_notify_problems_names_the_file(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    good = script(bin_dir / "good.sh", "exit 0\n")
    plain = bin_dir / "plain.sh"
    plain.write_text("echo\n")
    plain.chmod(0o600)
    tasks = [
        make_task(tmp_path, "a-good", notify=NotifySpec(command=(str(good),))),
        make_task(tmp_path, "b-missing", notify=NotifySpec(command=(str(tmp_path / "nope"),))),
        make_task(tmp_path, "c-plain", notify=NotifySpec(command=(str(plain),))),
        make_task(tmp_path, "d-folder", notify=NotifySpec(command=(str(bin_dir),))),
        make_task(tmp_path, "e-onpath", notify=NotifySpec(command=("good.sh", "--x"))),
        make_task(tmp_path, "f-notonpath", notify=NotifySpec(command=("absent-notifier",))),
        make_task(tmp_path, "g-desktop", notify=NotifySpec(desktop=True)),
        make_task(tmp_path, "h-default"),  # uses the schedd.toml default: reported once there
    ]
    config = DaemonConfig(timezone="UTC", notify=NotifySpec(command=("~/no-such-notifier",)))
    problems = notify_problems(tasks, config, search_path=str(bin_dir))
    assert len(problems) == 6, problems
    assert (
        problems[0].startswith("schedd.toml") and "no-such-notifier does not exist" in problems[0]
    )
    by_task = {p.split(":")[0]: p for p in problems[1:]}
    assert set(by_task) == {
        str(tmp_path / "tasks" / f"{n}.toml")
        for n in ("b-missing", "c-plain", "d-folder", "f-notonpath", "g-desktop")
    }
    assert "does not exist" in by_task[str(tmp_path / "tasks" / "b-missing.toml")]
    assert "is not executable" in by_task[str(tmp_path / "tasks" / "c-plain.toml")]
    assert "is a folder" in by_task[str(tmp_path / "tasks" / "d-folder.toml")]
    assert "is not on the PATH" in by_task[str(tmp_path / "tasks" / "f-notonpath.toml")]
    assert (
        "neither notify-send nor osascript" in by_task[str(tmp_path / "tasks" / "g-desktop.toml")]
    )
    script(bin_dir / "notify-send", "exit 0\n")
    assert not any("desktop" in p for p in notify_problems(tasks, config, str(bin_dir)))
    assert notify_problems([], DaemonConfig(timezone="UTC")) == []


# -- health-check pings --------------------------------------------------------------------------


def test_pings_start_then_outcome_in_order(
    home: Home, tmp_path: Path, server: PingServer, make_notifier: Any, logs: LogRecorder
) -> None:
    server.delay_start_s = 0.5  # a slow /start must still arrive before the end ping
    n = make_notifier()
    task = make_task(tmp_path, healthcheck_url=server.url)
    for status, rc in (("success", 0), ("failed", 3), ("failed", None), ("timeout", 143)):
        run = make_run(home, status=status, exit_code=rc)
        n.run_started(task, run)
        n.run_ended(task, run, previous_ok=True)
    wait_for(lambda: len(logs.events("notify.sent")) == 8, 15)
    base = "/ping/abc-123"
    assert server.paths == [
        f"{base}/start",
        base,
        f"{base}/start",
        f"{base}/3",
        f"{base}/start",
        f"{base}/fail",
        f"{base}/start",
        f"{base}/fail",
    ]
    sent = logs.events("notify.sent")[0]
    assert sent["channel"] == "healthcheck" and "abc-123" not in sent["url"]  # path stays secret


def test_config_default_url_and_task_override(
    home: Home, tmp_path: Path, server: PingServer, make_notifier: Any, logs: LogRecorder
) -> None:
    n = make_notifier(DaemonConfig(timezone="UTC", healthcheck_url=server.url + "-default"))
    n.run_ended(make_task(tmp_path, "a"), make_run(home, "a"), None)
    n.run_ended(make_task(tmp_path, "b", healthcheck_url=server.url), make_run(home, "b"), None)
    wait_for(lambda: len(server.paths) == 2, 10)
    assert sorted(server.paths) == ["/ping/abc-123", "/ping/abc-123-default"]


def test_hanging_server_gives_up_and_logs_without_blocking(
    home: Home, tmp_path: Path, server: PingServer, make_notifier: Any, logs: LogRecorder
) -> None:
    server.hang = True
    n = make_notifier(http_timeout_s=0.5, http_tries=2, http_backoff_s=0.1)
    task = make_task(tmp_path, healthcheck_url=server.url)
    t0 = time.monotonic()
    n.run_started(task, make_run(home))
    assert time.monotonic() - t0 < 0.1  # the hook only queues
    failed = wait_for(lambda: logs.events("notify.failed"), 10)
    assert isinstance(failed, list)
    assert failed[0]["reason"] == "no answer within the timeout (2 tries)"
    assert server.paths == ["/ping/abc-123/start"] * 2


def test_server_errors_retry_but_client_errors_do_not(
    home: Home, tmp_path: Path, server: PingServer, make_notifier: Any, logs: LogRecorder
) -> None:
    n = make_notifier(http_tries=3, http_backoff_s=0.05)
    task = make_task(tmp_path, healthcheck_url=server.url)
    server.status = 503
    n.run_started(task, make_run(home))
    wait_for(lambda: logs.events("notify.failed"), 10)
    assert len(server.paths) == 3
    assert logs.events("notify.failed")[0]["reason"] == "HTTP 503 (3 tries)"
    server.status = 404
    n.run_started(task, make_run(home))
    wait_for(lambda: len(logs.events("notify.failed")) == 2, 10)
    assert len(server.paths) == 4
    assert logs.events("notify.failed")[1]["reason"] == "HTTP 404 (not retried)"


def test_refused_connection_is_logged(
    home: Home, tmp_path: Path, make_notifier: Any, logs: LogRecorder
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    n = make_notifier(http_tries=2, http_backoff_s=0.05)
    n.run_started(make_task(tmp_path, healthcheck_url=f"http://127.0.0.1:{port}/x"), make_run(home))
    failed = wait_for(lambda: logs.events("notify.failed"), 10)
    assert isinstance(failed, list) and "refused" in failed[0]["reason"].lower()


# -- notify programs -----------------------------------------------------------------------------


RECORDER = """
cat > "$NOTIFY_OUT/$BASSI_RUN_ID.$BASSI_EVENT.json"
env > "$NOTIFY_OUT/$BASSI_RUN_ID.$BASSI_EVENT.env"
"""


def recorder_task(
    tmp_path: Path, on: tuple[str, ...], name: str = "report"
) -> tuple[TaskSpec, Path]:
    out = tmp_path / "notified"
    out.mkdir(exist_ok=True)
    prog = script(tmp_path / "notify.sh", RECORDER)
    spec = NotifySpec(on=on, command=(str(prog),))  # type: ignore[arg-type]
    return make_task(tmp_path, name, notify=spec, env=(("NOTIFY_OUT", str(out)),)), out


def test_program_gets_the_record_and_the_run_environment(
    home: Home, tmp_path: Path, make_notifier: Any, logs: LogRecorder
) -> None:
    task, out = recorder_task(tmp_path, ("failure",))
    n = make_notifier(parent_env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SECRET": "x"})
    run = make_run(home, status="failed", exit_code=4)
    (Path(str(run.run_dir)) / "output.log").write_text("boom\n")
    n.run_ended(task, run, previous_ok=True)
    n.run_ended(task, make_run(home), previous_ok=False)  # success: not asked for
    wait_for(lambda: logs.events("notify.sent"), 10)
    rec = json.loads((out / f"{run.run_id}.failure.json").read_text())
    assert rec["status"] == "failed" and rec["exit_code"] == 4 and rec["output_tail"] == "boom\n"
    env = dict(
        line.split("=", 1) for line in (out / f"{run.run_id}.failure.env").read_text().splitlines()
    )
    assert env["BASSI_TASK"] == "report" and env["BASSI_RUN_ID"] == run.run_id
    assert env["BASSI_RUN_DIR"] == run.run_dir and env["BASSI_HOME"] == str(home.root)
    assert env["BASSI_SCHEDULED_FOR"] == "2026-11-01T09:00:00+00:00"
    assert "SECRET" not in env  # clean environment, as runs get
    time.sleep(0.3)
    assert len(list(out.glob("*.json"))) == 1
    sent = logs.events("notify.sent")
    assert [(s["channel"], s["kind"]) for s in sent] == [("command", "failure")]


def test_failing_and_missing_programs_are_logged(
    home: Home, tmp_path: Path, make_notifier: Any, logs: LogRecorder
) -> None:
    bad = script(tmp_path / "bad.sh", "echo 'no route to pager' >&2\nexit 9\n")
    n = make_notifier()
    for name, prog in (("bad", str(bad)), ("gone", str(tmp_path / "nope.sh"))):
        task = make_task(tmp_path, name, notify=NotifySpec(command=(prog,)))
        n.run_ended(task, make_run(home, name, "failed", 1), previous_ok=None)
    wait_for(lambda: len(logs.events("notify.failed")) == 2, 10)
    failed = {f["task"]: f for f in logs.events("notify.failed")}
    assert failed["bad"]["reason"] == "exited with status 9"
    assert failed["bad"]["output"] == "no route to pager"
    assert "does not exist" in failed["gone"]["reason"]


HANGER = """
echo $$ > "$NOTIFY_OUT/prog.pid"
sleep 300 &
echo $! > "$NOTIFY_OUT/child.pid"
wait
"""


def test_hanging_program_is_killed_with_its_children(
    home: Home, tmp_path: Path, make_notifier: Any, logs: LogRecorder
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    prog = script(tmp_path / "hang.sh", HANGER)
    task = make_task(
        tmp_path, notify=NotifySpec(command=(str(prog),)), env=(("NOTIFY_OUT", str(out)),)
    )
    other, other_out = recorder_task(tmp_path, ("failure",), "other")
    n = make_notifier(command_timeout_s=1.0)
    t0 = time.monotonic()
    n.run_ended(task, make_run(home, status="failed", exit_code=1), None)
    n.run_ended(other, make_run(home, "other", "failed", 1), None)
    # Another task's notification is not held up by the hanging one.
    wait_for(lambda: list(other_out.glob("*.json")), 5)
    assert time.monotonic() - t0 < 1.0
    failed = wait_for(lambda: logs.events("notify.failed"), 10)
    assert isinstance(failed, list) and failed[0]["reason"] == "killed after 1s without finishing"
    assert time.monotonic() - t0 < 5.0
    pids = [int((out / f).read_text()) for f in ("prog.pid", "child.pid")]

    def gone() -> bool:
        return not any(
            psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids
        )

    wait_for(gone, 5)


def test_recovered_fires_once_after_failure(
    home: Home, tmp_path: Path, make_notifier: Any, logs: LogRecorder
) -> None:
    task, out = recorder_task(tmp_path, ("recovered",))
    n = make_notifier()
    last_ok: bool | None = None
    for status in ("success", "failed", "timeout", "success", "success", "failed", "success"):
        run = make_run(home, status=status, exit_code=0 if status == "success" else 1)
        n.run_ended(task, run, previous_ok=last_ok)
        last_ok = status == "success"
    wait_for(lambda: len(logs.events("notify.sent")) == 2, 10)
    time.sleep(0.3)
    assert len(list(out.glob("*.recovered.json"))) == 2  # once per failure -> success
    assert len(list(out.glob("*.json"))) == 2


def test_many_missed_times_make_few_notifications(
    home: Home, tmp_path: Path, make_notifier: Any, logs: LogRecorder
) -> None:
    task, out = recorder_task(tmp_path, ("missed",))
    n = make_notifier()
    for i in range(200):
        run = make_run(
            home,
            status="missed",
            exit_code=None,
            run_dir=None,
            scheduled_for=T0 + timedelta(minutes=i),
            started_at=None,
            ended_at=None,
        )
        n.time_missed(task, run)
    n.time_missed(task, make_run(home, status="coalesced"))  # not a missed row: ignored
    n.close(10.0)
    records = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert len(records) == 1
    assert records[0]["missed_count"] == 200
    assert all(r["event"] == "missed" and r["run_dir"] is None for r in records)
    env_text = next(out.glob("*.env")).read_text()
    assert "BASSI_RUN_DIR=\n" in env_text


def test_close_drops_what_is_left_and_kills_programs(
    home: Home, tmp_path: Path, make_notifier: Any, logs: LogRecorder
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    prog = script(tmp_path / "hang.sh", HANGER)
    task = make_task(
        tmp_path, notify=NotifySpec(command=(str(prog),)), env=(("NOTIFY_OUT", str(out)),)
    )
    n = make_notifier(command_timeout_s=60.0)
    for _ in range(3):
        n.run_ended(task, make_run(home, status="failed", exit_code=1), None)
    wait_for(lambda: (out / "child.pid").exists(), 5)
    t0 = time.monotonic()
    n.close(0.5)
    assert time.monotonic() - t0 < 2.0
    stopped = [f for f in logs.events("notify.failed") if "dropped" in f]
    assert stopped and stopped[0]["dropped"] == 2 and stopped[0]["killed"] == 1
    wait_for(lambda: not psutil.pid_exists(int((out / "child.pid").read_text())), 5)
    n.run_ended(task, make_run(home, status="failed", exit_code=1), None)  # after close: no-op


def test_queue_is_bounded(
    home: Home, tmp_path: Path, make_notifier: Any, logs: LogRecorder
) -> None:
    prog = script(tmp_path / "slow.sh", "sleep 0.5\n")
    n = make_notifier(workers=1, max_pending=3)
    for i in range(6):
        task = make_task(tmp_path, f"t{i}", notify=NotifySpec(command=(str(prog),)))
        n.run_ended(task, make_run(home, f"t{i}", "failed", 1), None)
    dropped = [f for f in logs.events("notify.failed") if "too many" in f["reason"]]
    assert len(dropped) == 3


# -- desktop -------------------------------------------------------------------------------------


def test_desktop_uses_notify_send_from_the_daemon_path(
    home: Home, tmp_path: Path, make_notifier: Any, logs: LogRecorder
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    argv_file = tmp_path / "argv"
    script(bin_dir / "notify-send", f'for a in "$@"; do echo "$a"; done > {argv_file}\n')
    n = make_notifier(parent_env={"PATH": f"{bin_dir}:/usr/bin:/bin", "DISPLAY": ":7"})
    task = make_task(tmp_path, notify=NotifySpec(desktop=True))
    n.run_ended(task, make_run(home, status="failed", exit_code=2), previous_ok=True)
    wait_for(lambda: logs.events("notify.sent"), 10)
    argv = argv_file.read_text().splitlines()
    assert "--urgency=critical" in argv
    assert "bassi-schedd: report failed" in argv
    assert any("exit code 2" in a for a in argv)


def test_desktop_without_a_notifier_logs_once(
    home: Home, tmp_path: Path, make_notifier: Any, logs: LogRecorder
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    n = make_notifier(parent_env={"PATH": str(empty)})
    task = make_task(tmp_path, notify=NotifySpec(on=("failure", "success"), desktop=True))
    for _ in range(3):
        n.run_ended(task, make_run(home, status="failed", exit_code=1), None)
    n.close(5.0)
    assert len(logs.events("notify.skipped")) == 1
    assert logs.events("notify.failed") == [] and logs.events("notify.sent") == []


def test_empty_healthcheck_url_turns_the_default_off(tmp_path: Path) -> None:
    import dataclasses

    from bassi_schedd.config.settings import config_from_dict
    from bassi_schedd.config.taskfile import task_from_text
    from bassi_schedd.notify.record import effective_healthcheck_url

    config = config_from_dict({"healthcheck_url": "https://hc.example/abc", "timezone": "UTC"})
    path = tmp_path / "t.toml"
    base = 'schedule = "@daily"\ncommand = ["/bin/true"]\n'
    plain = task_from_text(path, base, config)
    assert effective_healthcheck_url(plain, config) == "https://hc.example/abc"
    off = task_from_text(path, base + 'healthcheck_url = ""\n', config)
    assert effective_healthcheck_url(off, config) is None
    assert dataclasses.asdict(off)["healthcheck_url"] == ""
