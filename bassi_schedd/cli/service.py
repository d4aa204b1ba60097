"""``install [--dry-run] [--no-start]`` and ``uninstall [--dry-run]``: the launchd agent or systemd
user unit (SPEC 9). Both are safe to repeat; ``--dry-run`` prints what would happen and changes
nothing (it may still ask the service manager read-only questions)."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

from bassi_schedd.config.paths import Home, make_private_dir, write_private_file
from bassi_schedd.core.errors import UserError
from bassi_schedd.ops import install as svc
from bassi_schedd.ops import service_state

SERVICE_FILE_MODE = 0o644  # launchd and systemd read it; it holds no secret


def main(args: argparse.Namespace, home: Home) -> int:
    """Dispatch ``install`` / ``uninstall``."""
    platform = svc.detect_platform(getattr(args, "platform", None))
    if args.command == "uninstall":
        return uninstall(platform, home, dry_run=args.dry_run)
    return install(platform, home, dry_run=args.dry_run, no_start=args.no_start)


def _say(text: str) -> None:
    print(text, flush=True)


def _warn(text: str) -> None:
    print(f"bassi-schedd: warning: {text}", file=sys.stderr, flush=True)


def _show_file(path: Path, content: str) -> None:
    _say(f"would write {path}:")
    for line in content.splitlines():
        _say(f"    {line}")


# -- install ---------------------------------------------------------------------------------


def install(platform: svc.Platform, home: Home, *, dry_run: bool, no_start: bool) -> int:
    """Write the service file and the BASSI_HOME skeleton, then load the service."""
    target = svc.service_file(platform, svc.user_home())
    content = svc.render(platform, svc.current_values(home.root))
    old = _read(target)
    state: svc.FileState = "new" if old is None else "unchanged" if old == content else "changed"
    previous_home = svc.parse_installed(platform, old).env.get("BASSI_HOME") if old else None
    tool = svc.tool_for(platform)
    have_tool = shutil.which(tool) is not None
    if not no_start and not have_tool and not dry_run:
        # Fail before writing anything: half an install is worse than none.
        raise UserError(
            f"{tool} was not found on PATH, so this system cannot load the service; "
            "use 'bassi-schedd install --no-start' to only write the file, or run "
            "'bassi-schedd run' under your own supervisor"
        )
    _check_lock_holder(home, no_start=no_start)

    dirs = [d for d in _home_dirs(home) if not d.is_dir()]
    example = _example_target(home)
    example_text = svc.template_text(svc.EXAMPLE_TASK) if example else ""
    cmds: list[svc.Cmd] = []
    if not no_start:
        loaded = _is_loaded(platform) if state == "unchanged" and have_tool else None
        cmds = svc.load_commands(platform, state, target, loaded)

    if dry_run:
        _say("dry run: nothing is changed")
        for d in dirs:
            _say(f"would create folder {d} (0700)")
        if example:
            _show_file(example, example_text)
        if state == "unchanged":
            _say(f"unchanged: {target}")
        else:
            _show_file(target, content)
        for cmd in cmds:
            _say(f"would run: {cmd}")
        if not no_start and not have_tool:
            _warn(f"{tool} was not found on PATH; a real install would stop here")
    else:
        try:
            for d in dirs:
                make_private_dir(d)
            if example:
                write_private_file(example, example_text)
                _say(f"wrote an example task (disabled): {example}")
        except OSError as e:
            raise UserError(f"cannot set up {home.root}: {e.strerror or e}") from None
        if state == "unchanged":
            _say(f"service file unchanged: {target}")
        else:
            _write_service_file(target, content)
            _say(f"{'updated' if state == 'changed' else 'wrote'} {target}")
            if previous_home and previous_home != str(home.root):
                _say(f"the service now uses BASSI_HOME {home.root} (was {previous_home})")
        for cmd in cmds:
            _run_checked(cmd)

    if no_start:
        hint = " && ".join(str(c) for c in svc.load_commands(platform, state, target))
        _say(f"not started (--no-start); to start: {hint}")
    elif not dry_run:
        started = "restarted with the new file" if state == "changed" else "enabled and running"
        _say(f"bassi-schedd is {started} (BASSI_HOME {home.root})")
    if platform == "linux":
        _check_linger()
    return 0


def _check_lock_holder(home: Home, *, no_start: bool) -> None:
    """Refuse to start the service while a daemon it does not run holds the home's lock.

    That daemon would make the service's own exit at once, and systemd or launchd would then
    restart it forever while ``enable --now`` or ``bootstrap`` reports a failure. ``--no-start``
    starts nothing now, so it only warns.
    """
    holder = service_state.foreign_holder(home)
    if holder is None:
        return
    if no_start:
        _warn(
            f"a bassi-schedd daemon {holder.who()} (pid {holder.pid}) holds the lock of "
            f"{home.root}; stop it ({holder.stop_hint()}) before you start the service"
        )
        return
    raise UserError(
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


def _write_service_file(target: Path, content: str) -> None:
    # Parents get the usual 0755 (~/.config/systemd/user, ~/Library/LaunchAgents).
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        tmp.write_text(content, encoding="utf-8")
        os.chmod(tmp, SERVICE_FILE_MODE)
        os.replace(tmp, target)
    except OSError as e:
        raise UserError(f"cannot write {target}: {e.strerror or e}") from None


def _is_loaded(platform: svc.Platform) -> bool | None:
    query = svc.loaded_query(platform)
    if query is None:
        return None
    return svc.run_cmd(query, timeout_s=30).returncode == 0


def _run_checked(cmd: svc.Cmd) -> None:
    _say(f"running: {cmd}")
    for attempt in range(cmd.retries + 1):
        result = svc.run_cmd(cmd)
        if result.returncode == 0 or cmd.may_fail:
            return
        if attempt < cmd.retries:
            time.sleep(1.0)
    detail = service_state.reason_line(result.stdout, result.stderr) or f"exit {result.returncode}"
    hint = ""
    if cmd.argv[0] == "systemctl" and "bus" in detail.lower():
        # Typical over ssh/su: no user manager, or XDG_RUNTIME_DIR not set for it.
        hint = (
            f"; no systemd user manager is reachable: enable lingering "
            f"(loginctl enable-linger {svc.user_name()}), log in again and check that "
            f"XDG_RUNTIME_DIR=/run/user/{os.getuid()}"
        )
    elif cmd.argv[0] == "systemctl":
        hint = "; see 'journalctl --user -u bassi-schedd -n 50'"
    raise UserError(f"'{cmd}' failed: {detail}{hint}")


def _check_linger() -> None:
    user = svc.user_name()
    if not svc.linger_enabled(user):
        _warn(
            f"lingering is off for {user}: systemd stops the service when you log out and "
            f"starts it at your next login; to keep it running, run: "
            f"loginctl enable-linger {shlex.quote(user)}"
        )


# -- uninstall -------------------------------------------------------------------------------


def uninstall(platform: svc.Platform, home: Home, *, dry_run: bool) -> int:
    """Stop and remove the service; tasks, history and logs stay."""
    target = svc.service_file(platform, svc.user_home())
    if not target.exists():
        _say(f"bassi-schedd is not installed as a service (no {target})")
        return 0
    before, after = svc.unload_commands(platform)
    if dry_run:
        _say("dry run: nothing is changed")
        for cmd in before:
            _say(f"would run: {cmd}")
        _say(f"would remove {target}")
        for cmd in after:
            _say(f"would run: {cmd}")
        return 0
    have_tool = shutil.which(svc.tool_for(platform)) is not None
    failures: list[str] = []

    def run_all(cmds: list[svc.Cmd]) -> None:
        for cmd in cmds if have_tool else []:
            _say(f"running: {cmd}")
            result = svc.run_cmd(cmd)
            if result.returncode != 0 and not cmd.may_fail:
                detail = service_state.reason_line(result.stdout, result.stderr)
                detail = detail or f"exit {result.returncode}"
                failures.append(f"'{cmd}' failed: {detail}")

    run_all(before)  # before the removal: systemctl disable reads the unit's [Install]
    target.unlink(missing_ok=True)
    _say(f"removed {target}")
    run_all(after)
    _say(f"kept tasks, history and logs in {home.root}")
    if not have_tool:
        raise UserError(
            f"removed {target}, but {svc.tool_for(platform)} was not found on PATH, so a "
            "running daemon was not stopped"
        )
    if failures:
        raise UserError(f"removed {target}, but {failures[0]}; the daemon may still be running")
    return 0
