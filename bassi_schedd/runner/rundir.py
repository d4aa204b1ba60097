"""Preparing one run: its id, its folder (prompt.txt, task.json) and its clean environment."""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from bassi_schedd.config.paths import Home, make_private_dir, write_private_file
from bassi_schedd.config.taskfile import read_prompt
from bassi_schedd.core.spec import DaemonConfig, TaskSpec
from bassi_schedd.core.template import LastRun
from bassi_schedd.runner.previous import RunExtras

# Variables a run inherits from the daemon (SPEC 5); everything else is dropped, as cron does.
INHERITED = ("HOME", "USER", "LOGNAME", "SHELL", "LANG", "TZ", "TMPDIR", "PATH")


def prepare_run_dir(
    home: Home,
    task: TaskSpec,
    run_id: str,
    scheduled_for: datetime,
    now: datetime,
    last_run: LastRun | None,
    extras: RunExtras | None = None,
) -> Path:
    """Create ``runs/NAME/RUN_ID`` with the expanded prompt and the resolved task.

    ``extras`` (SPEC 10): ``{last_result}``, the run's lowered ``max_budget_usd`` and the session
    to resume go into prompt.txt and task.json. A gated task's ``{when_output}`` is left for the
    child to fill in once its gate ran (runner/gate.py).
    """
    from bassi_schedd.core.template import LATE, render_prompt, template_values

    extras = extras or RunExtras()
    run_dir = home.run_dir(task.name, run_id)
    make_private_dir(run_dir.parent)
    make_private_dir(run_dir)
    local = scheduled_for.astimezone(task.zone)
    values = template_values(task.name, local, run_id, last_run, extras.last_result)
    keep: tuple[str, ...] = LATE if task.when else ()
    text = render_prompt(read_prompt(task), values, keep=keep)
    write_private_file(run_dir / "prompt.txt", text)
    data = task.to_json()
    if extras.max_budget_usd is not None:
        data["agent"]["max_budget_usd"] = extras.max_budget_usd
    data["resume_session_id"] = extras.resume_session_id
    data["run_id"] = run_id
    data["scheduled_for"] = scheduled_for.astimezone(UTC).isoformat()
    data["prepared_at"] = now.astimezone(UTC).isoformat()
    write_private_file(run_dir / "task.json", json.dumps(data, indent=2, sort_keys=True) + "\n")
    return run_dir


def child_env(
    home: Home,
    config: DaemonConfig,
    task: TaskSpec,
    run_id: str,
    scheduled_for: datetime,
    run_dir: Path,
    parent_env: Mapping[str, str],
) -> dict[str, str]:
    """The clean environment of SPEC 5: a short inherited list, pass_env, task env, BASSI_*."""
    env = {k: v for k, v in parent_env.items() if k in INHERITED or k.startswith("LC_")}
    if "HOME" not in env or "USER" not in env:
        # launchd and some systemd setups start us without these; children (git, claude) need them
        pw = pwd.getpwuid(os.getuid())
        env.setdefault("HOME", pw.pw_dir)
        env.setdefault("USER", pw.pw_name)
        env.setdefault("LOGNAME", pw.pw_name)
        env.setdefault("SHELL", pw.pw_shell or "/bin/sh")
    env.setdefault("PATH", os.defpath)
    for name in config.pass_env:
        if name in parent_env:
            env[name] = parent_env[name]
    env.update(task.env)
    env.update(
        {
            "BASSI_HOME": str(home.root),
            "BASSI_TASK": task.name,
            "BASSI_RUN_ID": run_id,
            "BASSI_SCHEDULED_FOR": scheduled_for.astimezone(UTC).isoformat(),
            "BASSI_RUN_DIR": str(run_dir),
        }
    )
    return env


def child_argv(config: DaemonConfig, task: TaskSpec, run_dir: Path, python: str) -> list[str]:
    """The default executor, the configured runner, or the task's own command (SPEC 5)."""
    if task.command is not None:
        if task.when:  # the gate runs first, in the run's own process (runner/gate.py)
            gate = [python, "-m", "bassi_schedd.runner.gate", "--run-dir", str(run_dir), "--"]
            return [*gate, *task.command]
        return list(task.command)
    base = list(config.runner) if config.runner else [python, "-m", "bassi_schedd", "execute"]
    return [*base, "--run-dir", str(run_dir)]
