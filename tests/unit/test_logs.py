"""Structured logging: line format, rotation (also across processes), redaction, failures."""

from __future__ import annotations

import errno
import io
import itertools
import json
import math
import os
import re
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

import bassi_schedd.logs.logfile as logs_mod
from bassi_schedd.logs.setup import (
    EVENTS,
    LogFile,
    clear_secret_values,
    configure_logging,
    dropped_lines,
    register_secret_values,
    reset_logging,
    secret_env_values,
)

TS_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture(autouse=True)
def _clean_logging() -> Iterator[None]:
    yield
    reset_logging()
    clear_secret_values()


def lines_of(*paths: Path) -> list[str]:
    return [line for p in paths for line in p.read_text().splitlines()]


def records(*paths: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines_of(*paths)]


def all_files(log: Path) -> list[Path]:
    """schedd.log.N ... .1, schedd.log (oldest first)."""
    rotated = sorted(log.parent.glob(log.name + ".*[0-9]"), key=lambda p: -int(p.suffix[1:]))
    return [*rotated, log]


# -- the line -------------------------------------------------------------------------------


def test_one_json_object_per_line_ts_level_event_first(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "schedd.log"
    err = io.StringIO()
    configure_logging(log_file, stderr=err)
    structlog.get_logger().info("run.end", task="weekly", status="success", exit_code=0)
    structlog.get_logger(task="t2").warning("clock.jump", jump_s=-3600.0)

    lines = lines_of(log_file)
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert list(first)[:3] == ["ts", "level", "event"]
    assert TS_RE.fullmatch(first["ts"])
    ts = datetime.fromisoformat(first["ts"])
    assert abs((datetime.now(UTC) - ts).total_seconds()) < 60
    assert first | {"ts": None} == {
        "ts": None,
        "level": "info",
        "event": "run.end",
        "task": "weekly",
        "status": "success",
        "exit_code": 0,
    }
    assert json.loads(lines[1])["task"] == "t2"
    assert json.loads(lines[1])["level"] == "warning"
    # Not a terminal: stderr gets exactly the same JSON lines (what journald/launchd keep).
    assert err.getvalue().splitlines() == lines


def test_file_0600_folder_0700_and_a_loose_file_is_tightened(tmp_path: Path) -> None:
    log_file = tmp_path / "home" / "logs" / "schedd.log"
    configure_logging(log_file, stderr=None)
    structlog.get_logger().info("daemon.start")
    assert log_file.stat().st_mode & 0o777 == 0o600
    assert log_file.parent.stat().st_mode & 0o777 == 0o700
    reset_logging()
    log_file.chmod(0o644)
    configure_logging(log_file, stderr=None)
    structlog.get_logger().info("daemon.start")
    assert log_file.stat().st_mode & 0o777 == 0o600


def test_tty_stderr_gets_coloured_text_not_json(tmp_path: Path) -> None:
    err = io.StringIO()
    configure_logging(tmp_path / "schedd.log", stderr=err, stderr_tty=True)
    structlog.get_logger().info("run.start", task="weekly")
    text = err.getvalue()
    assert "\x1b[" in text and "run.start" in text and "weekly" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert json.loads((tmp_path / "schedd.log").read_text())["event"] == "run.start"
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        structlog.get_logger().exception("run.failed")
    assert "ZeroDivisionError: division by zero" in err.getvalue()


def test_level_filter_and_unknown_level(tmp_path: Path) -> None:
    log_file = tmp_path / "schedd.log"
    configure_logging(log_file, stderr=None, level="warning")
    log = structlog.get_logger()
    log.debug("a")
    log.info("b")
    log.warning("c")
    log.error("d")
    assert [r["event"] for r in records(log_file)] == ["c", "d"]
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(log_file, level="loud")


def test_exceptions_and_odd_values_are_logged_not_raised(tmp_path: Path) -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    log_file = tmp_path / "schedd.log"
    configure_logging(log_file, stderr=None)
    log = structlog.get_logger()
    try:
        raise KeyError("boom")
    except KeyError:
        log.exception("run.failed", task="t")
    when = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    log.info("odd", path=Path("/x"), when=when, bad=Broken(), nan=math.nan, items=(1, "a"))
    exc, odd = records(log_file)
    assert exc["level"] == "error" and "KeyError: 'boom'" in str(exc["exception"])
    assert odd["path"] == "/x" and odd["when"] == "2026-11-22T08:00:00+00:00"
    assert odd["bad"] == "<unprintable Broken>" and odd["nan"] == "nan"
    assert odd["items"] == [1, "a"]


def test_events_constant_lists_spec_events() -> None:
    spec = (
        "daemon.start daemon.stop daemon.reload task.loaded task.changed task.removed "
        "task.invalid run.start run.end run.retry run.skipped run.missed run.adopted "
        "clock.jump lock.busy"
    ).split()
    assert list(EVENTS[: len(spec)]) == spec  # SPEC 7 first, in its order


# -- redaction --------------------------------------------------------------------------------


def test_secrets_never_reach_the_file_or_stderr(tmp_path: Path) -> None:
    log_file = tmp_path / "schedd.log"
    err = io.StringIO()
    configure_logging(log_file, stderr=err)
    register_secret_values(["sk-ant-registered-123", "abc", "", "hunter22"])
    log = structlog.get_logger()
    log.info(
        "run.start",
        token="tok-value-1",
        ANTHROPIC_API_KEY="key-value-2",
        oauth_token="tok-value-3",
        db_password="pw-value-4",
        env={"REPORT_FORMAT": "short-value-5", "OTHER": "other-value-6"},
        nested={"headers": {"Authorization": "Bearer value-7"}, "list": ["x hunter22 y"]},
        message="calling with sk-ant-registered-123 now",
        input_tokens=1234,
        output_tokens=56,
        key="schedule",
    )
    log.info("run.end", error="user said hunter22")
    try:
        raise RuntimeError("failed with sk-ant-registered-123")
    except RuntimeError:
        log.exception("run.end")
    data = log_file.read_text()
    for secret in (
        "tok-value-1",
        "key-value-2",
        "tok-value-3",
        "pw-value-4",
        "short-value-5",
        "other-value-6",
        "value-7",
        "sk-ant-registered-123",
        "hunter22",
    ):
        assert secret not in data, secret
        assert secret not in err.getvalue(), secret
    first, second, third = records(log_file)
    assert first["token"] == first["ANTHROPIC_API_KEY"] == first["db_password"] == "***"
    assert first["env"] == {"REPORT_FORMAT": "***", "OTHER": "***"}
    assert first["nested"] == {"headers": {"Authorization": "***"}, "list": ["x *** y"]}
    assert first["message"] == "calling with *** now"
    # Counts and TOML key names are not secrets.
    assert (first["input_tokens"], first["output_tokens"], first["key"]) == (1234, 56, "schedule")
    assert second["error"] == "user said ***"
    assert "RuntimeError: failed with ***" in str(third["exception"])


def test_short_values_are_not_registered(tmp_path: Path) -> None:
    log_file = tmp_path / "schedd.log"
    configure_logging(log_file, stderr=None)
    register_secret_values(["abc", "on"])
    structlog.get_logger().info("run.start", note="abc on")
    assert records(log_file)[0]["note"] == "abc on"


def test_structural_fields_are_never_rewritten(tmp_path: Path) -> None:
    """Registered values are cut out of free text only: ts, level, event, task, ids stay whole."""
    log_file = tmp_path / "schedd.log"
    configure_logging(log_file, stderr=None)
    register_secret_values(["2026", "info", "start", "nightly", "20261206T053000Z"])
    structlog.get_logger().info(
        "run.start",
        task="nightly",
        run_id="20261206T053000Z-3f17ea",
        scheduled_for="2026-12-06T05:30:00+00:00",
        trigger="schedule",
        status="running",
        error="nightly failed at 2026 during start",
        details={"note": "info"},
    )
    line = records(log_file)[0]
    assert TS_RE.fullmatch(str(line["ts"]))
    assert (line["level"], line["event"], line["task"]) == ("info", "run.start", "nightly")
    assert line["run_id"] == "20261206T053000Z-3f17ea"
    assert line["scheduled_for"] == "2026-12-06T05:30:00+00:00"
    assert line["error"] == "*** failed at *** during ***"
    assert line["details"] == {"note": "***"}  # a field not known to be structural is free text


def test_which_env_values_count_as_secrets() -> None:
    pairs = [
        ("LVL", "info"),
        ("YEAR", "2026"),
        ("EVT", "start"),
        ("REPORT_FORMAT", "short"),
        ("OUTPUT_DIR", "/srv/reports"),
        ("DB_PASS", "hunter"),
        ("GITHUB_TOKEN", "ghp1"),
        ("API_KEY", "abc"),
        ("ANTHROPIC_API_KEY", "sk-ant-api03-xyz"),
    ]
    assert secret_env_values(pairs) == ["/srv/reports", "hunter", "ghp1", "sk-ant-api03-xyz"]


def test_longer_secret_containing_a_shorter_one_is_removed_whole(tmp_path: Path) -> None:
    log_file = tmp_path / "schedd.log"
    configure_logging(log_file, stderr=None)
    register_secret_values(["abcd"])
    register_secret_values(["xxabcdyy"])
    structlog.get_logger().info("e", note="1 xxabcdyy 2 abcd")
    assert records(log_file)[0]["note"] == "1 *** 2 ***"


# -- rotation ---------------------------------------------------------------------------------


def test_rotation_at_size_keeps_backups_and_never_splits_a_line(tmp_path: Path) -> None:
    log_file = tmp_path / "schedd.log"
    max_bytes = 1000
    configure_logging(log_file, max_bytes=max_bytes, backups=3, stderr=None)
    log = structlog.get_logger()
    for i in range(200):
        log.info("tick", seq=i, pad="x" * (i % 37))
    files = all_files(log_file)
    assert [p.name for p in files] == [
        "schedd.log.3",
        "schedd.log.2",
        "schedd.log.1",
        "schedd.log",
    ]
    for p in files:
        assert p.stat().st_size <= max_bytes
        assert p.stat().st_mode & 0o777 == 0o600
    seqs = [r["seq"] for r in records(*files)]
    # The newest lines survive, in order, with nothing missing or doubled.
    assert seqs == list(range(seqs[0], 200))
    assert len(seqs) > 3 * 1000 // 200  # the backups are full files, not stubs
    # Each file was rotated before it would have overflowed: the next line would not fit.
    for older, newer in itertools.pairwise(files):
        first_of_newer = newer.read_bytes().split(b"\n", 1)[0] + b"\n"
        assert older.stat().st_size + len(first_of_newer) > max_bytes


def test_a_line_longer_than_max_bytes_gets_a_file_of_its_own(tmp_path: Path) -> None:
    log_file = tmp_path / "schedd.log"
    configure_logging(log_file, max_bytes=200, backups=5, stderr=None)
    log = structlog.get_logger()
    log.info("small")
    log.info("big", pad="y" * 500)
    log.info("small2")
    files = all_files(log_file)
    assert [[r["event"] for r in records(p)] for p in files] == [["small"], ["big"], ["small2"]]


def test_backups_zero_starts_the_file_afresh(tmp_path: Path) -> None:
    log_file = tmp_path / "schedd.log"
    configure_logging(log_file, max_bytes=150, backups=0, stderr=None)
    log = structlog.get_logger()
    for i in range(5):
        log.info("tick", seq=i)
    assert all_files(log_file) == [log_file]
    assert records(log_file)[-1]["seq"] == 4


def test_a_writer_with_a_stale_descriptor_follows_anothers_rotation(tmp_path: Path) -> None:
    log_file = tmp_path / "schedd.log"
    a = LogFile(log_file, max_bytes=300, backups=5, retry_s=60)
    b = LogFile(log_file, max_bytes=300, backups=5, retry_s=60)
    assert b.write('{"w":"b","n":0}') is None  # b opens the file now
    for n in range(10):  # a fills and rotates it
        assert a.write(json.dumps({"w": "a", "n": n, "pad": "z" * 20})) is None
    assert b.write('{"w":"b","n":1}') is None
    a.close()
    b.close()
    assert json.loads(log_file.read_text().splitlines()[-1]) == {"w": "b", "n": 1}
    assert len(records(*all_files(log_file))) == 12


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import structlog
    from bassi_schedd.logs.setup import configure_logging
    path, name, count, max_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    configure_logging(Path(path), max_bytes=max_bytes, backups=500, stderr=None)
    log = structlog.get_logger()
    sys.stdin.read(1)  # start together
    for i in range(count):
        log.info("stress", writer=name, seq=i, pad="p" * (i % 50))
    """
)


def test_two_processes_rotating_concurrently_lose_and_split_nothing(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "schedd.log"
    count, max_bytes = 3000, 16 * 1024
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(log_file), name, str(count), str(max_bytes)],
            stdin=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go")
        p.stdin.close()
    for p in procs:
        assert p.wait(timeout=120) == 0
    files = all_files(log_file)
    assert len(files) > 10  # rotated many times while both wrote
    for p in files:
        # The invariant under the lock: rotation happens before a line would overflow.
        assert p.stat().st_size <= max_bytes
    recs = records(*files)  # every line is whole, valid JSON
    assert len(recs) == 2 * count
    for name in ("a", "b"):
        seqs = [r["seq"] for r in recs if r["writer"] == name]
        assert seqs == list(range(count))  # each writer's lines in order, none lost or doubled


# -- failures ---------------------------------------------------------------------------------


def test_log_path_under_a_regular_file_does_not_raise_and_stderr_keeps_logging(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "logs"
    blocker.write_text("not a folder")
    err = io.StringIO()
    configure_logging(blocker / "schedd.log", stderr=err)
    log = structlog.get_logger()
    log.info("run.start", task="a")
    log.info("run.end", task="a")
    out = [json.loads(line) for line in err.getvalue().splitlines()]
    # One notice per outage, then every line still on stderr.
    assert [r["event"] for r in out] == ["log.file_error", "run.start", "run.end"]
    assert out[0]["file"] == str(blocker / "schedd.log") and out[0]["retry_s"] == 60
    assert dropped_lines() == 2
    assert blocker.read_text() == "not a folder"


def test_log_file_that_is_a_directory_does_not_raise(tmp_path: Path) -> None:
    log_file = tmp_path / "schedd.log"
    log_file.mkdir()
    err = io.StringIO()
    configure_logging(log_file, stderr=err)
    structlog.get_logger().info("daemon.start")
    assert "IsADirectoryError" in err.getvalue() and '"daemon.start"' in err.getvalue()
    assert dropped_lines() == 1


def test_disk_full_drops_to_stderr_retries_after_interval_and_reports_the_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_file = tmp_path / "schedd.log"
    clock = [1000.0]
    monkeypatch.setattr(logs_mod, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    err = io.StringIO()
    configure_logging(log_file, stderr=err, retry_s=60)
    log = structlog.get_logger()
    log.info("before")

    real_write = os.write
    opens: list[str] = []
    real_open = os.open

    def full_disk(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def counting_open(path: object, *a: object, **kw: object) -> int:
        opens.append(str(path))
        return real_open(path, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(logs_mod.os, "write", full_disk)
    monkeypatch.setattr(logs_mod.os, "open", counting_open)
    log.info("lost-1")
    log.info("lost-2")
    clock[0] += 59  # within the retry interval: the file is not even reopened
    log.info("lost-3")
    assert opens == []
    monkeypatch.setattr(logs_mod.os, "write", real_write)
    clock[0] += 2
    log.info("after")
    assert opens  # retried once the interval passed

    recs = records(log_file)
    assert [r["event"] for r in recs] == ["before", "log.dropped", "after"]
    assert recs[1]["dropped"] == 3 and "No space left" in str(recs[1]["error"])
    events = [json.loads(line)["event"] for line in err.getvalue().splitlines()]
    assert events == ["before", "log.file_error", "lost-1", "lost-2", "lost-3", "after"]
    assert dropped_lines() == 3


def test_failed_rotation_falls_back_to_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_file = tmp_path / "schedd.log"
    err = io.StringIO()
    configure_logging(log_file, max_bytes=100, stderr=err)
    log = structlog.get_logger()
    log.info("first", pad="a" * 40)

    def no_rename(src: object, dst: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(logs_mod.os, "replace", no_rename)
    log.info("second", pad="b" * 40)
    assert [r["event"] for r in records(log_file)] == ["first"]
    assert '"second"' in err.getvalue() and "log.file_error" in err.getvalue()


def test_a_line_cut_short_earlier_does_not_swallow_the_next(tmp_path: Path) -> None:
    log_file = tmp_path / "schedd.log"
    log_file.write_text('{"event":"whole"}\n{"event":"cut sh')
    configure_logging(log_file, stderr=None)
    structlog.get_logger().info("next")
    lines = lines_of(log_file)
    assert lines[1] == '{"event":"cut sh'
    assert json.loads(lines[2])["event"] == "next"


def test_broken_stderr_does_not_raise(tmp_path: Path) -> None:
    err = io.StringIO()
    err.close()
    configure_logging(tmp_path / "schedd.log", stderr=err)
    structlog.get_logger().info("still")
    assert records(tmp_path / "schedd.log")[0]["event"] == "still"


# -- descriptors ------------------------------------------------------------------------------


def _fds_to(path: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(path)):
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_children_do_not_inherit_the_log_descriptors(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "schedd.log"
    configure_logging(log_file, stderr=None)
    structlog.get_logger().info("open")
    assert len(_fds_to(log_file.parent)) == 2  # the log and its lock, in this process
    probe = "import os; print([os.path.realpath(f'/proc/self/fd/{fd}') for fd in range(3, 200)])"
    child = subprocess.run(
        [sys.executable, "-c", probe], close_fds=False, capture_output=True, text=True, check=True
    )
    assert str(log_file.parent) not in child.stdout


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_reconfiguring_closes_the_previous_file(tmp_path: Path) -> None:
    first = tmp_path / "one" / "schedd.log"
    configure_logging(first, stderr=None)
    structlog.get_logger().info("a")
    configure_logging(tmp_path / "two" / "schedd.log", stderr=None)
    assert _fds_to(first.parent) == []
    structlog.get_logger().info("b")
    reset_logging()
    assert _fds_to(tmp_path) == []
