"""The preflight gate (SPEC 10 ``when``): a program that says whether a run has anything to do.

It runs in the run's own child process, never in the daemon (whose loop must not block): the
executor runs it first for agent tasks, and a command task with a gate is started as
``python -m bassi_schedd.runner.gate --run-dir DIR -- COMMAND...``, which runs the gate and then
``exec``s the command (same pid and create time, so the daemon's tracking holds). The gate runs
in the run's environment, cwd and folder; its stdout and stderr go to ``when.log``, and the last
10 KB of its stdout become ``{when_output}`` in prompt.txt.

The verdict goes to ``gate.json`` in the run folder, where the daemon (or ``execute TASK``) reads
it when the child exits: exit 0 goes on; exit 1 ends the run ``skipped_condition``; any other
exit, a signal, a missing program or the timeout ends it ``failed`` with one sentence why.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bassi_schedd.config.paths import FILE_MODE, write_private_file
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.core.template import (
    VARIABLES,
    WHEN_OUTPUT_MAX_BYTES,
    clip_tail,
    render_prompt,
)
from bassi_schedd.runner.kill import signal_tree, stop_tree, tree_of
from bassi_schedd.runner.previous import read_run_json
from bassi_schedd.runner.spawn import ChildSpec, start_child

GATE_FILE = "gate.json"
WHEN_LOG = "when.log"
# A gate is a quick check: past its timeout it gets this long between SIGTERM and SIGKILL.
GATE_GRACE_S = 2.0
EXIT_SKIP = 1


@dataclass(frozen=True)
class Verdict:
    """What the gate said: ``go`` (exit 0), ``skip`` (exit 1) or ``fail`` (anything else)."""

    verdict: str  # go | skip | fail
    exit_code: int | None
    reason: str | None = None

    @property
    def go(self) -> bool:
        return self.verdict == "go"


def _name(argv: Sequence[str]) -> str:
    return os.path.basename(argv[0])


def run_gate(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path, timeout_s: float
) -> tuple[Verdict, str]:
    """Run the gate once; its verdict and its stdout (last 10 KB, as text)."""
    name = _name(argv)
    # 0600 whatever the caller's umask (``execute TASK`` runs the gate from a user's shell).
    os.close(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE))
    try:
        proc = start_child(ChildSpec(tuple(argv), env, cwd, name="bassi-gate", stderr_file=log))
    except OSError as e:
        why = (
            "was not found" if isinstance(e, FileNotFoundError) else f"cannot start ({e.strerror})"
        )
        reason = f"the gate program {argv[0]!r} {why}"
        _append(log, f"bassi-schedd: {reason}\n")
        return Verdict("fail", None, reason), ""
    assert proc.stdout is not None
    out = bytearray()
    deadline = time.monotonic() + timeout_s
    timed_out = False
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    with selectors.DefaultSelector() as sel, open(log, "ab") as log_f:
        sel.register(fd, selectors.EVENT_READ)
        open_pipe = True
        while proc.poll() is None:
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                timed_out = True
                break
            if not open_pipe:
                time.sleep(min(left_s, 0.05))
                continue
            if sel.select(min(left_s, 0.2)) and not _take(fd, out, log_f):
                sel.unregister(fd)
                open_pipe = False
        if timed_out:
            stop_tree(proc.pid, tree_of(proc.pid), GATE_GRACE_S, reap=proc.poll, settle_s=2.0)
        _take(fd, out, log_f)  # what it wrote just before it ended
    proc.stdout.close()
    # Whatever it left running in its group goes with it: a gate is a check, not a service.
    signal_tree(proc.pid, [], signal.SIGKILL)
    proc.wait()
    text = clip_tail(out.decode("utf-8", errors="replace"), WHEN_OUTPUT_MAX_BYTES)
    if timed_out:
        reason = (
            f"the gate {name!r} did not finish within {timeout_s:g}s (when_timeout) and was stopped"
        )
        _append(log, f"bassi-schedd: {reason}\n")
        return Verdict("fail", None, reason), text
    rc = proc.returncode
    if rc == 0:
        return Verdict("go", 0), text
    if rc == EXIT_SKIP:
        return Verdict("skip", 1, f"the gate {name!r} exited 1: nothing to do"), text
    if rc < 0:
        sig = signal.Signals(-rc).name if -rc in signal.valid_signals() else f"signal {-rc}"
        return Verdict("fail", None, f"the gate {name!r} was killed by {sig}"), text
    return Verdict("fail", rc, f"the gate {name!r} exited {rc} (0 runs, 1 skips)"), text


def _take(fd: int, out: bytearray, log_f: object) -> bool:
    """Copy what the gate's stdout has now to when.log and ``out``; False once it is closed."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        log_f.write(chunk)  # type: ignore[attr-defined]
        log_f.flush()  # type: ignore[attr-defined]
        out += chunk
        # More than is kept, so that the clip (and its "[...]" mark) sees that some was cut.
        del out[: max(0, len(out) - 2 * WHEN_OUTPUT_MAX_BYTES)]


def _append(path: Path, text: str) -> None:
    with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as f:
        f.write(text)


def gate_run_dir(run_dir: Path, env: Mapping[str, str] | None = None) -> Verdict | None:
    """Run the gate of a prepared run folder (None: its task has none), record the verdict in
    gate.json and, when it says go, fill ``{when_output}`` into prompt.txt."""
    task = read_run_json(run_dir, "task.json")  # a bad one: the executor says why, in its words
    when = task.get("when")
    if not when:
        return None
    timeout_s = float(task.get("when_timeout_s") or 60.0)
    cwd = Path(str(task.get("cwd") or "~")).expanduser()
    verdict, output = run_gate(
        [str(a) for a in when],
        dict(os.environ if env is None else env),
        cwd,
        run_dir / WHEN_LOG,
        timeout_s,
    )
    write_private_file(run_dir / GATE_FILE, json.dumps(asdict(verdict)) + "\n")
    prompt = run_dir / "prompt.txt"
    if verdict.go and prompt.exists():
        others = tuple(v for v in VARIABLES if v != "when_output")
        text = prompt.read_text(encoding="utf-8")
        write_private_file(prompt, render_prompt(text, {"when_output": output}, keep=others))
    return verdict


def read_verdict(run_dir: Path) -> Verdict | None:
    """The verdict a run's gate left in its folder, if it ran."""
    try:
        data = json.loads((run_dir / GATE_FILE).read_text(encoding="utf-8"))
        return Verdict(str(data["verdict"]), data.get("exit_code"), data.get("reason"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def gate_outcome(
    run_dir: Path, status: RunStatus, rc: int | None
) -> tuple[RunStatus, int | None, str | None]:
    """How a run that failed on its own really ended, given its gate: ``skipped_condition``
    (exit 1) or ``failed`` with the gate's reason; any other run keeps its status."""
    if status != RunStatus.FAILED:
        return status, rc, None
    verdict = read_verdict(run_dir)
    if verdict is None or verdict.go:
        return status, rc, None
    if verdict.verdict == "skip":
        return RunStatus.SKIPPED_CONDITION, EXIT_SKIP, verdict.reason
    return RunStatus.FAILED, verdict.exit_code, verdict.reason


def main(argv: Sequence[str]) -> int:
    """``python -m bassi_schedd.runner.gate --run-dir DIR -- COMMAND...``: gate, then exec."""
    args = list(argv)
    if len(args) < 4 or args[0] != "--run-dir" or args[2] != "--":
        print(
            "usage: python -m bassi_schedd.runner.gate --run-dir DIR -- COMMAND...", file=sys.stderr
        )
        return 2
    run_dir, command = Path(args[1]), args[3:]
    verdict = gate_run_dir(run_dir)
    if verdict is not None and not verdict.go:
        print(f"bassi-schedd: {verdict.reason}", file=sys.stderr, flush=True)
        return EXIT_SKIP
    sys.stdout.flush()
    try:
        os.execvpe(command[0], command, os.environ)  # noqa: S606
    except OSError as e:
        print(f"bassi-schedd: cannot start {command[0]}: {e.strerror or e}", file=sys.stderr)
        return 127
    return 127  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
