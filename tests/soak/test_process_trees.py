"""Reliability: timed-out runs whose process trees fight back leave no survivor and no zombie.

Every run forks grandchildren: some ignore SIGTERM, some move to their own session (setsid),
some are orphaned on purpose (double fork), some sit three levels deep. Each process appends its
PID to ``$BASSI_RUN_DIR/pids``. The runs are one-shot (``at``) tasks that all fire on the same
minute and time out together (max_concurrent is high), so the 10 s SIGTERM->SIGKILL grace is paid
once, not once per run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from support import Start, db_rows, wait_for

from bassi_schedd.config.paths import Home

REC = 'echo $$ >> "$BASSI_RUN_DIR/pids"'
# Scripts, one per process level; `sh NAME.sh` runs one (cwd is the scripts folder).
SCRIPTS = {
    "obey_leaf": f"{REC}; exec sleep 300",
    "ignore_leaf": f"trap '' TERM; {REC}; exec sleep 300",
    "mid2": f"trap '' TERM; {REC}; setsid sh ignore_leaf.sh & sleep 300",
    "mid1": f"trap '' TERM; {REC}; sh mid2.sh & sleep 300",
}
# kind -> (the run's script, number of processes that record their PID)
TREES: dict[str, tuple[str, int]] = {
    # Everything obeys SIGTERM.
    "plain": (f"sh obey_leaf.sh & {REC}; sleep 300", 2),
    # The run and its grandchild ignore SIGTERM (so does the run's own sleep).
    "ignore": (f"trap '' TERM; sh ignore_leaf.sh & {REC}; sleep 300", 2),
    # A grandchild in its own session, ignoring SIGTERM: not in the run's process group.
    "setsid": (f"setsid sh ignore_leaf.sh & {REC}; sleep 300", 2),
    # Double fork: the grandchild's parent exits at once, so it is no descendant of the run.
    "orphan": (f"( setsid sh ignore_leaf.sh & ) ; {REC}; sleep 300", 2),
    # Four levels, each ignoring SIGTERM, the deepest in its own session.
    "deep": (f"trap '' TERM; {REC}; sh mid1.sh & sleep 300", 4),
}
KINDS = sorted(TREES)
FIRE_AT = "2026-11-01T05:30:00"


def write_scripts(folder: Path) -> None:
    folder.mkdir()
    for name, body in {**SCRIPTS, **{k: v[0] for k, v in TREES.items()}}.items():
        (folder / f"{name}.sh").write_text(body + "\n")


def task_toml(kind: str, scripts: Path) -> str:
    return (
        f'at = "{FIRE_AT}"\ntimezone = "UTC"\ntimeout = "6s"\ncwd = "{scripts}"\n'
        f'command = ["/bin/sh", "{kind}.sh"]\n'
    )


def pids_of(run_dir: Path) -> list[int]:
    try:
        return [int(x) for x in (run_dir / "pids").read_text().split()]
    except FileNotFoundError:
        return []


def survivors(recorded: dict[str, list[int]]) -> list[tuple[str, int, str]]:
    """Recorded processes still present (zombies included), identified by their run id."""
    left = []
    for run_id, pids in recorded.items():
        for pid in pids:
            try:
                p = psutil.Process(pid)
                status = p.status()
                if status == psutil.STATUS_ZOMBIE or p.environ().get("BASSI_RUN_ID") == run_id:
                    left.append((run_id, pid, status))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    return left


@pytest.fixture
def reap_runs(home: Home) -> Iterator[None]:
    """If the daemon fails, its survivors must not outlive the test (they sleep 300 s)."""
    yield
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if p.environ().get("BASSI_HOME") == str(home.root):
                p.kill()


@pytest.mark.parametrize(
    "runs", [pytest.param(5, id="fast"), pytest.param(50, id="soak", marks=pytest.mark.soak)]
)
def test_timed_out_hostile_trees_leave_no_survivor_and_no_zombie(
    home: Home, write_task, daemon: Start, tmp_path: Path, reap_runs: None, runs: int
) -> None:
    scripts = tmp_path / "scripts"
    write_scripts(scripts)
    home.config_file.write_text(f"max_concurrent = {runs + 10}\n")
    names = {}
    for i in range(runs):
        kind = KINDS[i % len(KINDS)]
        name = f"tree{i:02d}-{kind}"
        names[name] = kind
        write_task(name, task_toml(kind, scripts))
    d = daemon(fake_at="2026-11-01 05:29:56")
    d.wait_ready()

    def all_started() -> list[dict[str, object]]:
        rows = db_rows(home, "SELECT * FROM runs WHERE run_dir IS NOT NULL")
        return rows if len(rows) == runs else []

    rows = wait_for(all_started, 30)
    assert isinstance(rows, list)
    dirs = {str(r["run_id"]): Path(str(r["run_dir"])) for r in rows}
    kind_of = {str(r["run_id"]): names[str(r["task"])] for r in rows}

    def all_recorded() -> bool:
        return all(len(pids_of(dirs[rid])) == TREES[kind_of[rid]][1] for rid in dirs)

    # Every process of every tree is up before the timeout, or the test proves nothing.
    wait_for(all_recorded, 6)
    recorded = {rid: pids_of(path) for rid, path in dirs.items()}
    total = sum(TREES[names[n]][1] for n in names)
    assert sum(map(len, recorded.values())) == total
    assert len(survivors(recorded)) == total  # the survivor check does see live processes

    def all_timed_out() -> bool:
        statuses = [r["status"] for r in db_rows(home, "SELECT status FROM runs")]
        return len(statuses) == runs and all(s == "timeout" for s in statuses)

    wait_for(all_timed_out, 60, every=0.2)
    final = db_rows(home, "SELECT task, trigger, status, exit_code, ended_at FROM runs")
    assert sorted(r["task"] for r in final) == sorted(names)
    assert {(r["trigger"], r["status"]) for r in final} == {("schedule", "timeout")}
    assert all(r["ended_at"] is not None for r in final)

    # A run is recorded `timeout` only once its whole tree is gone; allow the reaper a moment.
    wait_for(lambda: not survivors(recorded), 5)
    daemon_proc = psutil.Process(d.pid)
    assert daemon_proc.children(recursive=True) == []
    zombies = [
        p.pid
        for p in psutil.process_iter(["status", "ppid"])
        if p.info["status"] == psutil.STATUS_ZOMBIE and p.info["ppid"] == d.pid
    ]
    assert zombies == []
    assert d.stop() == 0
    assert not survivors(recorded)


def test_a_grandchild_that_clears_its_environment_does_not_escape(
    home: Home, write_task, daemon: Start, tmp_path: Path
) -> None:
    pid_file = tmp_path / "escaped.pid"
    (tmp_path / "escaped.sh").write_text(f"trap '' TERM; echo $$ > {pid_file}; exec sleep 300\n")
    escape = f"( setsid env -i /bin/sh {tmp_path / 'escaped.sh'} & ); sleep 300\n"
    (tmp_path / "escape.sh").write_text(escape)
    write_task(
        "escape",
        f'at = "{FIRE_AT}"\ntimezone = "UTC"\ntimeout = "1s"\ncwd = "{tmp_path}"\n'
        'command = ["/bin/sh", "escape.sh"]\n',
    )
    d = daemon(fake_at="2026-11-01 05:29:58")
    d.wait_ready()
    wait_for(pid_file.exists, 10)
    pid = int(pid_file.read_text())
    try:
        wait_for(
            lambda: (
                [r for r in db_rows(home, "SELECT status FROM runs")] == [{"status": "timeout"}]
            ),
            30,
        )
        wait_for(lambda: not psutil.pid_exists(pid), 5)
    finally:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
        d.stop()


# -- leftovers die with their run, whatever else runs ------------------------------------------


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def hidden(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A script that ignores SIGTERM and records its PID, and that PID file; killed at the end
    (it clears its environment, so `reap_runs` cannot recognise it)."""
    pid_file = tmp_path / "hidden.pid"
    script = tmp_path / "hidden.sh"
    script.write_text(
        f"trap '' TERM; echo $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}\nexec sleep 300\n"
    )
    yield script, pid_file
    if pid_file.exists():
        with contextlib.suppress(psutil.Error, ValueError):
            psutil.Process(int(pid_file.read_text())).kill()


def write_steady_task(write_task) -> None:
    """Another task whose run keeps going the whole test."""
    write_task(
        "steady",
        'schedule = "0 0 1 1 *"\ntimezone = "UTC"\ntimeout = "10m"\n'
        'command = ["/bin/sh", "-c", "sleep 300"]\n',
    )


def test_a_timed_out_runs_hidden_grandchild_dies_while_another_run_goes_on(
    home: Home, write_task, daemon: Start, cli, hidden: tuple[Path, Path], reap_runs: None
) -> None:
    script, pid_file = hidden
    write_steady_task(write_task)
    # Double fork, own session, empty environment, SIGTERM ignored: no trace of its run.
    write_task(
        "hostile",
        'schedule = "0 0 1 1 *"\ntimezone = "UTC"\ntimeout = "2s"\n'
        f'command = ["/bin/sh", "-c", "( setsid env -i /bin/sh {script} & ); sleep 300"]\n',
    )
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "steady").returncode == 0
    wait_for(lambda: db_rows(home, "SELECT status FROM runs WHERE task = 'steady'"), 20)
    assert cli("trigger", "hostile").returncode == 0
    wait_for(pid_file.exists, 20)
    pid = int(pid_file.read_text())

    def hostile_status() -> object:
        rows = db_rows(home, "SELECT status FROM runs WHERE task = 'hostile'")
        return rows[0]["status"] if rows else None

    wait_for(lambda: hostile_status() == "timeout", 60, every=0.2)
    # Recorded `timeout` only once its whole tree is gone: the reaper may need a moment.
    wait_for(lambda: gone(pid), 5)
    steady = db_rows(home, "SELECT status FROM runs WHERE task = 'steady'")
    assert [r["status"] for r in steady] == ["running"]
    assert d.stop() == 0


def test_leftovers_of_a_run_that_ended_die_while_another_run_goes_on(
    home: Home, write_task, daemon: Start, cli, hidden: tuple[Path, Path], reap_runs: None
) -> None:
    script, pid_file = hidden
    write_steady_task(write_task)
    detach = (
        f"( setsid env -i /bin/sh {script} & ); "
        f"while [ ! -e {pid_file} ]; do sleep 0.05; done; echo done; exit 0"
    )
    write_task(
        "detach",
        'schedule = "0 0 1 1 *"\ntimezone = "UTC"\ntimeout = "5m"\n'
        f'command = ["/bin/sh", "-c", "{detach}"]\n',
    )
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "steady").returncode == 0
    wait_for(lambda: db_rows(home, "SELECT status FROM runs WHERE task = 'steady'"), 20)
    assert cli("trigger", "detach").returncode == 0

    def detach_row() -> dict[str, object] | None:
        rows = db_rows(home, "SELECT * FROM runs WHERE task = 'detach' AND ended_at IS NOT NULL")
        return rows[0] if rows else None

    # The run ends with its main process: success at once, not when the leftover is gone.
    row = wait_for(detach_row, 30)
    assert isinstance(row, dict)
    assert (row["status"], row["exit_code"]) == ("success", 0)
    pid = int(pid_file.read_text())
    # SIGTERM is ignored, so the SIGKILL after the 10 s grace ends it.
    wait_for(lambda: gone(pid), 30, every=0.2)
    steady = db_rows(home, "SELECT status FROM runs WHERE task = 'steady'")
    assert [r["status"] for r in steady] == ["running"]
    output = (Path(str(row["run_dir"])) / "output.log").read_text()
    assert "done\n" in output and "main process exited; stopping" in output
    assert f'"event":"run.leftovers","task":"detach","run_id":"{row["run_id"]}"' in (
        home.log_file.read_text()
    )
    assert d.stop() == 0
