"""What ``install`` and ``uninstall`` do (SPEC 9), as a :class:`~bassi_schedd.ops.plan.Plan`:
worked out here (reading files and asking the service manager read-only questions), shown by
``--dry-run`` or carried out by the real run.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from bassi_schedd.config.paths import FILE_MODE, Home
from bassi_schedd.core.errors import UserError
from bassi_schedd.ops import install as svc
from bassi_schedd.ops import service_state
from bassi_schedd.ops.plan import (
    Check,
    KeepFile,
    MakeFolder,
    Note,
    Plan,
    Problem,
    Refusal,
    RemoveFile,
    RunCommand,
    Step,
    WriteFile,
)

SERVICE_FILE_MODE = 0o644  # launchd and systemd read it; it holds no secret


def install_plan(platform: svc.Platform, home: Home, *, no_start: bool, web: bool = False) -> Plan:
    """Write the BASSI_HOME skeleton and the service file, then load the service (and, with
    ``web``, the dashboard's own service the same way)."""
    target = svc.service_file(platform, svc.user_home())
    content = svc.render(platform, svc.current_values(home.root))
    old = _read(target)
    state: svc.FileState = "new" if old is None else "unchanged" if old == content else "changed"
    tool = svc.tool_for(platform)
    have_tool = shutil.which(tool) is not None
    refusals: list[Refusal] = []
    if not no_start and not have_tool:
        # Refused before anything is written: half an install is worse than none.
        refusals.append(
            Refusal(
                f"{tool} was not found on PATH, so this system cannot load the service; "
                "use 'bassi-schedd install --no-start' to only write the file, or run "
                "'bassi-schedd run' under your own supervisor",
                dry_warning=f"{tool} was not found on PATH; a real install would stop here",
            )
        )
    steps: list[Step] = []
    holder = _lock_holder_refusal(home, no_start=no_start)
    if isinstance(holder, Refusal):
        refusals.append(holder)
    elif holder is not None:
        steps.append(holder)

    setup_fails = f"cannot set up {home.root}"
    steps += [MakeFolder(d, setup_fails) for d in _home_dirs(home) if not d.is_dir()]
    example = _example_target(home)
    if example is not None:
        done = f"wrote an example task (disabled): {example}"
        text = svc.template_text(svc.EXAMPLE_TASK)
        steps.append(WriteFile(example, text, FILE_MODE, (done,), setup_fails))
    if state == "unchanged":
        steps.append(KeepFile(target, "service file"))
    else:
        done_lines = [f"{'updated' if state == 'changed' else 'wrote'} {target}"]
        previous_home = svc.parse_installed(platform, old).env.get("BASSI_HOME") if old else None
        if previous_home and previous_home != str(home.root):
            done_lines.append(f"the service now uses BASSI_HOME {home.root} (was {previous_home})")
        fails = f"cannot write {target}"
        steps.append(WriteFile(target, content, SERVICE_FILE_MODE, tuple(done_lines), fails))

    if no_start:
        hint = " && ".join(str(c) for c in svc.load_commands(platform, state, target))
        steps.append(Note(f"not started (--no-start); to start: {hint}"))
    else:
        loaded = _is_loaded(platform) if state == "unchanged" and have_tool else None
        steps += [RunCommand(c) for c in svc.load_commands(platform, state, target, loaded)]
        started = "restarted with the new file" if state == "changed" else "enabled and running"
        steps.append(Note(f"bassi-schedd is {started} (BASSI_HOME {home.root})", result=True))
    if web:
        steps += web_service_steps(platform, home, no_start=no_start, have_tool=have_tool)
    if platform == "linux":
        steps.append(Check(_linger_warning))
    return Plan(tuple(steps), tuple(refusals))


def uninstall_plan(platform: svc.Platform, home: Home) -> Plan:
    """Stop and remove the service (and the dashboard's, if installed); tasks, history and logs
    stay."""
    target = svc.service_file(platform, svc.user_home())
    web_target = svc.service_file(platform, svc.user_home(), svc.WEB)
    if not target.exists() and not web_target.exists():
        return Plan(nothing_to_do=f"bassi-schedd is not installed as a service (no {target})")
    tool = svc.tool_for(platform)
    have_tool = shutil.which(tool) is not None
    steps: list[Step] = []
    for service, path in ((svc.WEB, web_target), (svc.DAEMON, target)):
        if not path.exists():
            continue
        before, after = svc.unload_commands(platform, service) if have_tool else ([], [])
        still_running = (
            f"{'the daemon' if service is svc.DAEMON else service.name} may still be running"
        )
        # Unloading comes first: systemctl disable reads the unit's [Install] section.
        steps += [RunCommand(c, if_failed=still_running) for c in before]
        steps.append(RemoveFile(path))
        steps += [RunCommand(c, if_failed=still_running) for c in after]
    steps.append(Note(f"kept tasks, history and logs in {home.root}", result=True))
    if not have_tool:
        steps.append(Problem(f"{tool} was not found on PATH, so a running daemon was not stopped"))
    return Plan(tuple(steps), partly=f"removed {target}")


def _lock_holder_refusal(home: Home, *, no_start: bool) -> Refusal | Note | None:
    """Refuse to start the service while a daemon it does not run holds the home's lock.

    That daemon would make the service's own exit at once, and systemd or launchd would then
    restart it forever while ``enable --now`` or ``bootstrap`` reports a failure. ``--no-start``
    starts nothing now, so it only warns.
    """
    holder = service_state.foreign_holder(home)
    if holder is None:
        return None
    if no_start:
        return Note(
            f"a bassi-schedd daemon {holder.who()} (pid {holder.pid}) holds the lock of "
            f"{home.root}; stop it ({holder.stop_hint()}) before you start the service",
            warn=True,
        )
    return Refusal(
        f"a bassi-schedd daemon {holder.who()} (pid {holder.pid}) holds the lock of "
        f"{home.root}, so the service's own daemon cannot start; stop it first "
        f"({holder.stop_hint()}), then run install again"
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise UserError(f"cannot read the installed service file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"the installed service file {path} is not UTF-8 text") from None


def _home_dirs(home: Home) -> list[Path]:
    return [home.root, home.tasks_dir, home.schedd_dir, home.logs_dir, home.runs_dir]


def _example_target(home: Home) -> Path | None:
    """tasks/example.toml, but only into an empty tasks folder: never back after a delete."""
    tasks = home.tasks_dir
    try:
        if tasks.is_dir() and any(p.suffix == ".toml" for p in tasks.iterdir()):
            return None
    except OSError:
        return None  # unreadable: not ours to fill
    return tasks / svc.EXAMPLE_TASK


def _is_loaded(platform: svc.Platform) -> bool | None:
    query = svc.loaded_query(platform)
    if query is None:
        return None
    return svc.run_cmd(query, timeout_s=30).returncode == 0


def _linger_warning() -> str | None:
    user = svc.user_name()
    if svc.linger_enabled(user):
        return None
    return (
        f"lingering is off for {user}: systemd stops the service when you log out and "
        f"starts it at your next login; to keep it running, run: "
        f"loginctl enable-linger {shlex.quote(user)}"
    )


def web_service_steps(
    platform: svc.Platform, home: Home, *, no_start: bool, have_tool: bool
) -> list[Step]:
    """``install --web``: write the dashboard's own unit/agent and load it like the daemon's."""
    target = svc.service_file(platform, svc.user_home(), svc.WEB)
    content = svc.render(platform, svc.current_values(home.root), svc.WEB)
    old = _read(target)
    state: svc.FileState = "new" if old is None else "unchanged" if old == content else "changed"
    steps: list[Step] = []
    if state == "unchanged":
        steps.append(KeepFile(target, "dashboard service file"))
    else:
        done = f"{'updated' if state == 'changed' else 'wrote'} {target}"
        steps.append(
            WriteFile(target, content, SERVICE_FILE_MODE, (done,), f"cannot write {target}")
        )
    loaded = None
    if not no_start and state == "unchanged" and have_tool:
        query = svc.loaded_query(platform, svc.WEB)
        loaded = None if query is None else svc.run_cmd(query, timeout_s=30).returncode == 0
    commands = svc.load_commands(platform, state, target, loaded, svc.WEB)
    if no_start:
        hint = " && ".join(str(c) for c in commands)
        steps.append(Note(f"dashboard not started (--no-start); to start: {hint}"))
    else:
        steps += [RunCommand(c) for c in commands]
        steps.append(
            Note(
                "the dashboard runs on http://127.0.0.1:8765/ (log in with "
                f"http://127.0.0.1:8765/?token=TOKEN, the token is in {home.root}/web.token)",
                result=True,
            )
        )
    return steps
