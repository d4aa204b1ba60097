"""Reliability: many daemons started at once on one home; the PID lock lets exactly one run.

The same home is reused across rounds, so the pid file still names the previous round's winner
when the next race starts: a loser must name the new holder, never a stale or unknown PID.
"""

from __future__ import annotations

import json
import re
import signal

import psutil
import pytest
from support import Start, wait_for

from bassi_schedd.config.paths import Home
from bassi_schedd.store.lock import read_holder

DAEMONS_PER_ROUND = 10
BUSY = re.compile(r"already running \(pid (\d+|unknown)\)")


@pytest.mark.parametrize(
    "rounds", [pytest.param(3, id="fast"), pytest.param(20, id="soak", marks=pytest.mark.soak)]
)
def test_many_daemons_at_once_exactly_one_holds_the_lock(
    home: Home, write_task, daemon: Start, rounds: int
) -> None:
    write_task("idle", 'schedule = "0 0 1 1 *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    previous_winner: int | None = None
    for round_no in range(rounds):
        log_lines = len(home.log_file.read_text().splitlines()) if home.log_file.exists() else 0
        procs = [daemon() for _ in range(DAEMONS_PER_ROUND)]
        wait_for(
            lambda ps=procs: sum(p.proc.poll() is not None for p in ps) >= DAEMONS_PER_ROUND - 1,
            90,
            every=0.1,
        )
        alive = [p for p in procs if p.proc.poll() is None]
        assert len(alive) == 1, f"round {round_no}: {len(alive)} daemons still running"
        winner = alive[0]
        winner.wait_ready(30)
        assert read_holder(home) == winner.pid
        assert home.pid_file.read_text().strip() == str(winner.pid)
        for loser in procs:
            if loser is winner:
                continue
            out = loser.output()
            assert loser.proc.returncode == 1, f"round {round_no}: exit {loser.proc.returncode}"
            named = BUSY.findall(out)
            assert named == [str(winner.pid)], (
                f"round {round_no}: loser {loser.pid} names {named}, winner is {winner.pid} "
                f"(previous winner {previous_winner}):\n{out}"
            )
            assert "Traceback" not in out
        # This round's log: one daemon.start (the winner's), a lock.busy per loser naming it.
        events = [json.loads(line) for line in home.log_file.read_text().splitlines()[log_lines:]]
        starts = [e["pid"] for e in events if e["event"] == "daemon.start"]
        busy = [e["pid"] for e in events if e["event"] == "lock.busy"]
        assert starts == [winner.pid]
        assert busy == [winner.pid] * (DAEMONS_PER_ROUND - 1)
        assert winner.stop(signal.SIGTERM) == 0
        assert not psutil.pid_exists(winner.pid) or (
            psutil.Process(winner.pid).status() == psutil.STATUS_ZOMBIE
        )
        assert read_holder(home) is None
        previous_winner = winner.pid
