"""The I/O side of ``export``: load the tasks (through the config loader, as the daemon does),
read the files that go into the ConfigMap (tasks, prompts, schedd.toml), find the
``bassi-schedd`` to start, write the results.

A task that cannot be exported (invalid file, schedule without an exact equivalent, prompt
file outside tasks/) is a :class:`Problem` for that task only; the others are still exported.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bassi_schedd.config.loader import TaskLoader, load_config
from bassi_schedd.config.paths import Home, make_private_dir, service_path, write_private_file
from bassi_schedd.config.userfile import UnreadableFileError, read_user_text
from bassi_schedd.core.errors import UsageError, UserError
from bassi_schedd.core.spec import DaemonConfig, TaskSpec
from bassi_schedd.export import kubernetes as k8s
from bassi_schedd.export import systemd as sd
from bassi_schedd.export.notes import Note, Problem, kubernetes_notes, systemd_notes
from bassi_schedd.export.schedules import NotExactError

# A ConfigMap is at most 1 MiB in all; leave room for its metadata and the YAML around it.
MAX_CONFIGMAP_BYTES = 1_000_000


@dataclass
class Export:
    """What an export produced: files (name -> text), warnings, per-task errors."""

    files: dict[str, str] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    exported: list[str] = field(default_factory=list)


def load_selected(home: Home, names: list[str]) -> tuple[DaemonConfig, list[TaskSpec], Export]:
    """The named tasks (all when none are named); invalid ones become problems."""
    config = load_config(home)
    result = TaskLoader(home, config).load()
    if result.folder_error is not None:
        raise result.folder_error
    known = set(result.tasks) | set(result.errors)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"no task named {unknown[0]!r} in {home.tasks_dir}")
    wanted = list(dict.fromkeys(names)) or sorted(known)
    if not wanted:
        raise UserError(f"no task to export: {home.tasks_dir} has no task files")
    out = Export()
    for name in wanted:
        if name in result.errors:
            out.problems.append(Problem(name, f"not exported: {result.errors[name]}"))
    return config, [result.tasks[n] for n in wanted if n in result.tasks], out


def _untranslatable(task: TaskSpec, e: NotExactError) -> Problem:
    return Problem(
        task.name, f"schedule {task.schedule.text.strip()!r} cannot be translated exactly: {e}"
    )


# -- kubernetes ---------------------------------------------------------------------------------


def export_kubernetes(home: Home, names: list[str], image: str, namespace: str | None) -> Export:
    """The multi-document YAML (under the name ``manifest``) for the selected tasks."""
    config, tasks, out = load_selected(home, names)
    settings = _read(home.config_file) if home.config_file.exists() else None
    bundles: list[k8s.TaskFiles] = []
    jobs = []
    for task in tasks:
        try:
            bundle = task_files(task, settings)
            jobs.append(k8s.cronjob(bundle, image, namespace))
        except NotExactError as e:
            out.problems.append(_untranslatable(task, e))
            continue
        except UserError as e:
            out.problems.append(Problem(task.name, str(e)))
            continue
        bundles.append(bundle)
        out.notes.extend(kubernetes_notes(task, config))
        out.exported.append(task.name)
    size = sum(len(text.encode()) for b in bundles for _, _, text in b.files)
    size += len(settings.encode()) if settings and bundles else 0
    if size > MAX_CONFIGMAP_BYTES:
        raise UserError(
            f"the ConfigMap would hold {size} bytes of task and prompt files, over Kubernetes' "
            "limit of 1 MiB; export fewer tasks at a time, or shorten prompt files"
        )
    if bundles:
        out.files["manifest"] = k8s.dump_yaml([k8s.configmap(bundles, namespace), *jobs])
    return out


def task_files(task: TaskSpec, settings: str | None = None) -> k8s.TaskFiles:
    """The task file and its prompt file, as they go into the ConfigMap (with ``settings``, the
    text of schedd.toml)."""
    base = task.path.parent
    files = [(k8s.configmap_key(task.path.name), task.path.name, _read(task.path))]
    if task.prompt_file is not None:
        try:
            rel = task.prompt_file.relative_to(base).as_posix()
        except ValueError:
            raise UserError(
                f"prompt_file {task.prompt_file} is outside the tasks folder {base}, and the "
                "pod gets only files from there; move it into the tasks folder"
            ) from None
        files.append((k8s.configmap_key(rel), rel, _read(task.prompt_file)))
    return k8s.TaskFiles(task, tuple(files), settings)


def _read(path: Path) -> str:
    try:
        return read_user_text(path)[0]
    except UnreadableFileError as e:
        raise UserError(f"cannot read {e}") from None


# -- systemd ------------------------------------------------------------------------------------


def export_systemd(home: Home, names: list[str]) -> Export:
    """``bassi-NAME.service`` and ``bassi-NAME.timer`` for each selected task."""
    config, tasks, out = load_selected(home, names)
    argv = bassi_schedd_argv()
    env = {"PATH": service_path(os.environ.get("PATH"), argv[0]), "BASSI_HOME": str(home.root)}
    for task in tasks:
        stem = sd.unit_stem(task.name)
        if stem == sd.DAEMON_UNIT:
            out.problems.append(
                Problem(task.name, f"its units would be {stem}.*, the daemon's own; rename it")
            )
            continue
        try:
            timer = sd.timer_unit(task)
        except NotExactError as e:
            out.problems.append(_untranslatable(task, e))
            continue
        out.files[f"{stem}.service"] = sd.service_unit(task, argv, env)
        out.files[f"{stem}.timer"] = timer
        out.notes.extend(systemd_notes(task, config))
        out.exported.append(task.name)
    return out


def bassi_schedd_argv() -> list[str]:
    """How a unit starts this bassi-schedd: the script beside this interpreter (a venv, pipx),
    else the one on PATH, else this interpreter with ``-m bassi_schedd``."""
    python = os.path.abspath(sys.executable)
    beside = os.path.join(os.path.dirname(python), "bassi-schedd")
    if os.access(beside, os.X_OK):
        return [beside]
    found = shutil.which("bassi-schedd")
    if found:
        return [os.path.abspath(found)]
    return [python, "-m", "bassi_schedd"]


# -- writing ------------------------------------------------------------------------------------


def write_file(target: str, text: str) -> None:
    """Write ``text`` to ``target`` (0600, atomically), or to stdout for ``-``."""
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_private_file(Path(target).expanduser(), text)


def write_units(folder: str | None, files: dict[str, str]) -> None:
    """Unit files into ``folder`` (created 0700 if missing), or to stdout with a header line
    before each (``### NAME``) when there is no folder."""
    if folder is None:
        sys.stdout.write("".join(f"### {name}\n{text}\n" for name, text in files.items()))
        sys.stdout.flush()
        return
    target = Path(folder).expanduser()
    if target.exists() and not target.is_dir():
        raise UsageError(f"-o {folder}: not a folder")
    make_private_dir(target)
    for name, text in files.items():
        write_private_file(target / name, text)
