"""A plan of changes to the user's system: the steps ``install`` or ``uninstall`` takes, worked
out once. ``--dry-run`` shows the plan (:func:`show`), the real run carries it out
(:func:`carry_out`), so what the one says and what the other does cannot differ.

A plan is data: folders and files to write (with their content and mode), files to remove,
commands to run, lines to say. Only :class:`Check` is asked when it is reached (in both modes):
a read-only question whose answer may depend on the steps before it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bassi_schedd.config.paths import make_private_dir
from bassi_schedd.core.errors import UserError
from bassi_schedd.ops import install as svc
from bassi_schedd.ops import service_state

Say = Callable[[str], None]


@dataclass
class Report:
    """Where steps speak (``say`` on stdout, ``warn`` on stderr), and the problems a real run
    collects to end with (see ``Plan.partly``)."""

    say: Say
    warn: Say
    partly: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MakeFolder:
    """A folder (and its parents) created 0700; ``fail_as`` starts the sentence if that fails."""

    path: Path
    fail_as: str

    def show(self, out: Report) -> None:
        out.say(f"would create folder {self.path} (0700)")

    def do(self, out: Report) -> None:
        try:
            make_private_dir(self.path)
        except OSError as e:
            raise UserError(f"{self.fail_as}: {e.strerror or e}") from None


@dataclass(frozen=True)
class WriteFile:
    """A file replaced atomically with ``content`` and ``mode`` (parents made as needed); the
    ``done`` lines are said once it is written."""

    path: Path
    content: str
    mode: int
    done: tuple[str, ...]
    fail_as: str

    def show(self, out: Report) -> None:
        out.say(f"would write {self.path}:")
        for line in self.content.splitlines():
            out.say(f"    {line}")

    def do(self, out: Report) -> None:
        try:
            write_file(self.path, self.content, self.mode)
        except OSError as e:
            raise UserError(f"{self.fail_as}: {e.strerror or e}") from None
        for line in self.done:
            out.say(line)


@dataclass(frozen=True)
class KeepFile:
    """A file already as it should be."""

    path: Path
    what: str

    def show(self, out: Report) -> None:
        out.say(f"unchanged: {self.path}")

    def do(self, out: Report) -> None:
        out.say(f"{self.what} unchanged: {self.path}")


@dataclass(frozen=True)
class RemoveFile:
    """A file to delete (gone already is fine)."""

    path: Path

    def show(self, out: Report) -> None:
        out.say(f"would remove {self.path}")

    def do(self, out: Report) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as e:
            raise UserError(f"cannot remove {self.path}: {e.strerror or e}") from None
        out.say(f"removed {self.path}")


@dataclass(frozen=True)
class RunCommand:
    """A command. Its failure stops the run at once, or, with ``if_failed`` (what the failure
    means), the run goes on and the failure ends it (see ``Plan.partly``)."""

    cmd: svc.Cmd
    if_failed: str | None = None

    def show(self, out: Report) -> None:
        out.say(f"would run: {self.cmd}")

    def do(self, out: Report) -> None:
        out.say(f"running: {self.cmd}")
        failure = run_command(self.cmd, hint=self.if_failed is None)
        if failure is None:
            return
        if self.if_failed is None:
            raise UserError(failure)
        out.problems.append(f"{failure}; {self.if_failed}")


@dataclass(frozen=True)
class Note:
    """A line to say: on stdout, or a warning on stderr. A ``result`` says what was done, so a
    dry run leaves it out."""

    text: str
    warn: bool = False
    result: bool = False

    def show(self, out: Report) -> None:
        if not self.result:
            self.do(out)

    def do(self, out: Report) -> None:
        (out.warn if self.warn else out.say)(self.text)


@dataclass(frozen=True)
class Check:
    """A read-only question asked when reached, in both modes; its answer is a warning or None."""

    warning: Callable[[], str | None]

    def show(self, out: Report) -> None:
        self.do(out)

    def do(self, out: Report) -> None:
        warning = self.warning()
        if warning is not None:
            out.warn(warning)


@dataclass(frozen=True)
class Problem:
    """Something known in advance to end the run with an error after its steps (``Plan.partly``)."""

    text: str

    def show(self, out: Report) -> None:
        out.warn(f"a real run would end with: {out.partly}, but {self.text}")

    def do(self, out: Report) -> None:
        out.problems.append(self.text)


Step = MakeFolder | WriteFile | KeepFile | RemoveFile | RunCommand | Note | Check | Problem


@dataclass(frozen=True)
class Refusal:
    """Why the real run must not start: it stops with ``error`` before changing anything. A dry
    run still shows the plan, with ``dry_warning``; without one, it stops with ``error`` too."""

    error: str
    dry_warning: str | None = None


@dataclass(frozen=True)
class Plan:
    """The steps, in order, and what may stop them.

    ``nothing_to_do``: said instead of anything else, in both modes. ``partly``: what the run
    has done when a ``Problem`` or a failed ``RunCommand`` with ``if_failed`` ends it (the
    error is "<partly>, but <the first problem>").
    """

    steps: tuple[Step, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    nothing_to_do: str | None = None
    partly: str = ""


def show(plan: Plan, say: Say, warn: Say) -> None:
    """The dry run: say what carrying out ``plan`` would do, change nothing."""
    if plan.nothing_to_do is not None:
        say(plan.nothing_to_do)
        return
    for refusal in plan.refusals:
        if refusal.dry_warning is None:
            raise UserError(refusal.error)
    say("dry run: nothing is changed")
    for refusal in plan.refusals:  # only those with a dry_warning are left
        warn(refusal.dry_warning or refusal.error)
    out = Report(say, warn, plan.partly)
    for step in plan.steps:
        step.show(out)


def carry_out(plan: Plan, say: Say, warn: Say) -> None:
    """The real run: every step of ``plan`` in order; raises UserError at the first failure (or,
    for the failures the plan lets pass, once all steps are done)."""
    if plan.nothing_to_do is not None:
        say(plan.nothing_to_do)
        return
    if plan.refusals:
        raise UserError(plan.refusals[0].error)
    out = Report(say, warn, plan.partly)
    for step in plan.steps:
        step.do(out)
    if out.problems:
        raise UserError(f"{plan.partly}, but {out.problems[0]}")


def write_file(path: Path, content: str, mode: int) -> None:
    """Replace ``path`` atomically with ``content`` and exactly ``mode``; parents get the usual
    0755 (~/.config/systemd/user, ~/Library/LaunchAgents) when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, content.encode())
        os.fsync(fd)
        os.fchmod(fd, mode)  # whatever the umask
    finally:
        os.close(fd)
    os.replace(tmp, path)


def run_command(cmd: svc.Cmd, *, hint: bool) -> str | None:
    """Run ``cmd`` (with its retries, 1 s apart); None when it succeeded or may fail, else the
    sentence saying how it failed (``hint``: with what to look at for systemctl)."""
    for attempt in range(cmd.retries + 1):
        result = svc.run_cmd(cmd)
        if result.returncode == 0 or cmd.may_fail:
            return None
        if attempt < cmd.retries:
            time.sleep(1.0)
    detail = service_state.reason_line(result.stdout, result.stderr) or f"exit {result.returncode}"
    extra = ""
    if hint and cmd.argv[0] == "systemctl" and "bus" in detail.lower():
        # Typical over ssh/su: no user manager, or XDG_RUNTIME_DIR not set for it.
        extra = (
            f"; no systemd user manager is reachable: enable lingering "
            f"(loginctl enable-linger {svc.user_name()}), log in again and check that "
            f"XDG_RUNTIME_DIR=/run/user/{os.getuid()}"
        )
    elif hint and cmd.argv[0] == "systemctl":
        extra = "; see 'journalctl --user -u bassi-schedd -n 50'"
    return f"'{cmd}' failed: {detail}{extra}"
