"""Tasks as Kubernetes manifests (SPEC 12): the ConfigMap ``bassi-tasks`` and one ``batch/v1``
CronJob per task. Pure: the file contents come in as :class:`TaskFiles`, YAML text goes out.

Each pod runs ``bassi-schedd execute NAME`` as it would run at home, with ``HOME`` and
``BASSI_HOME`` on the volume ``bassi-home`` (an ``emptyDir``: history and run folders live as
long as the pod; README "Moving to Kubernetes" shows how to keep them). Task files must be
owned by the user who runs them (SPEC 2) and ConfigMap files belong to root, so an init
container copies the task's own files from the ConfigMap into ``BASSI_HOME/tasks`` first, as
the pod's non-root user, and ``schedd.toml`` (when there is one) to ``BASSI_HOME``: its
``pass_env`` decides which of the Secret's variables reach a run, as at home.
"""

from __future__ import annotations

import hashlib
import math
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from bassi_schedd.core.errors import UserError
from bassi_schedd.core.spec import TaskSpec
from bassi_schedd.export.notes import DEADLINE_MARGIN_S
from bassi_schedd.export.schedules import kube_schedule

CONFIGMAP = "bassi-tasks"
SECRET_NAME = "bassi-secrets"  # noqa: S105 - the name of the Secret, not a secret
VOLUME = "bassi-home"
HOME_DIR = "/home/bassi"
BASSI_HOME = f"{HOME_DIR}/.bassi"
TASKS_MOUNT = "/bassi-tasks"
USER_ID = 1000  # the Containerfile's user `bassi`
MAX_NAME = 52  # a CronJob's name; the Job controller appends 11 characters to it
# schedd.toml's key in the ConfigMap: `_` names are no task files, and no item path of a task
SETTINGS_KEY = "_schedd.toml"
# On time is within 90 s (SPEC 4); the CronJob controller needs at least 10 s.
ON_TIME_S = 90
MIN_STARTING_DEADLINE_S = 10
LABELS = {"app.kubernetes.io/name": "bassi-schedd"}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


@dataclass(frozen=True)
class TaskFiles:
    """A task and the files of it that go into the ConfigMap: (key, path under tasks/, text);
    ``settings``: the text of schedd.toml, which every pod gets, or None."""

    task: TaskSpec
    files: tuple[tuple[str, str, str], ...]
    settings: str | None = None


def cronjob_name(task: str) -> str:
    """``bassi-NAME``, or when NAME is too long or not a DNS label (``_``, a trailing ``-``) a
    shortened, cleaned form made unique by a hash of the name; at most 52 characters."""
    plain = f"bassi-{task}"
    if len(plain) <= MAX_NAME and _DNS_LABEL.match(task):
        return plain
    digest = hashlib.sha256(task.encode()).hexdigest()[:8]
    room = MAX_NAME - len("bassi-") - len(digest) - 1
    stem = task.replace("_", "-")[:room].strip("-")
    return f"bassi-{stem}-{digest}"


def configmap_key(relpath: str) -> str:
    """The ConfigMap key for a file at ``relpath`` under tasks/ (keys cannot hold ``/``)."""
    if _CONFIGMAP_KEY.match(relpath) and relpath not in (".", ".."):
        return relpath
    digest = hashlib.sha256(relpath.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^-._a-zA-Z0-9]', '_', relpath)[-200:]}.{digest}"


def configmap(bundles: Iterable[TaskFiles], namespace: str | None) -> dict[str, Any]:
    """The ConfigMap holding every exported task file and prompt file (and schedd.toml)."""
    data: dict[str, str] = {}
    for b in bundles:
        if b.settings is not None:
            data[SETTINGS_KEY] = b.settings
        for key, path, text in b.files:
            if data.setdefault(key, text) != text or key == SETTINGS_KEY:
                raise UserError(
                    f"two different files would be the ConfigMap's {key!r} (one is the prompt "
                    f"file {path}); rename it"
                )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(CONFIGMAP, namespace, dict(LABELS)),
        "data": dict(sorted(data.items())),
    }


def cronjob(bundle: TaskFiles, image: str, namespace: str | None) -> dict[str, Any]:
    """The CronJob of one task; raises ``NotExactError`` if its schedule has no cron equivalent."""
    task = bundle.task
    schedule, zone = kube_schedule(task.schedule, task.timezone)
    name = cronjob_name(task.name)
    labels = {**LABELS, "bassi-schedd/task": name.removeprefix("bassi-")}
    spec: dict[str, Any] = {
        "schedule": schedule,
        "timeZone": zone,
        "suspend": not task.enabled,
        "concurrencyPolicy": {"skip": "Forbid", "queue": "Forbid", "replace": "Replace"}.get(
            task.overlap, "Allow"
        ),
    }
    deadline = starting_deadline_s(task)
    if deadline is not None:
        spec["startingDeadlineSeconds"] = deadline
    spec["jobTemplate"] = {
        "metadata": {"labels": labels},
        "spec": {
            "activeDeadlineSeconds": math.ceil(task.timeout_s) + DEADLINE_MARGIN_S,
            "backoffLimit": task.retries,
            "template": {"metadata": {"labels": labels}, "spec": _pod(bundle, image)},
        },
    }
    meta = _metadata(name, namespace, labels)
    meta["annotations"] = {
        "bassi-schedd/task": task.name,
        "bassi-schedd/schedule": task.schedule.text,
    }
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta, "spec": spec}


def starting_deadline_s(task: TaskSpec) -> int | None:
    """on_missed skip: on time or not at all; latest/all: within missed_deadline (or always)."""
    if task.on_missed == "skip":
        return ON_TIME_S
    if task.missed_deadline_s is None:
        return None
    return max(MIN_STARTING_DEADLINE_S, math.ceil(task.missed_deadline_s))


def _pod(bundle: TaskFiles, image: str) -> dict[str, Any]:
    task = bundle.task
    home_mount = [{"name": VOLUME, "mountPath": HOME_DIR}]
    return {
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": USER_ID,
            "runAsGroup": USER_ID,
            "fsGroup": USER_ID,
        },
        "initContainers": [
            {
                "name": "tasks",
                "image": image,
                "command": ["sh", "-c", _copy_script(bundle)],
                "volumeMounts": [*home_mount, {"name": "tasks", "mountPath": TASKS_MOUNT}],
            }
        ],
        "containers": [
            {
                "name": "task",
                "image": image,
                "command": ["bassi-schedd", "execute", task.name],
                "env": [
                    {"name": "HOME", "value": HOME_DIR},
                    {"name": "BASSI_HOME", "value": BASSI_HOME},
                    # the task's zone for {date} {time}... in prompts, as at home
                    {"name": "TZ", "value": task.timezone},
                ],
                "envFrom": [{"secretRef": {"name": SECRET_NAME}}],
                "volumeMounts": home_mount,
            }
        ],
        "volumes": [
            {"name": VOLUME, "emptyDir": {}},
            {
                "name": "tasks",
                "configMap": {
                    "name": CONFIGMAP,
                    "defaultMode": 0o444,
                    "items": [{"key": key, "path": path} for key, path, _ in _items(bundle)],
                },
            },
        ],
    }


def _items(bundle: TaskFiles) -> list[tuple[str, str, str]]:
    items = list(bundle.files)
    if bundle.settings is not None:
        items.append((SETTINGS_KEY, SETTINGS_KEY, bundle.settings))
    return items


def _copy_script(bundle: TaskFiles) -> str:
    """Copy the task's files into BASSI_HOME/tasks as the pod's user (0700 folders, 0400 files);
    -L because ConfigMap files are symbolic links, -f to replace a copy on a kept volume."""
    lines = ["set -e", "umask 077", f"T={BASSI_HOME}/tasks", 'mkdir -p "$T"']
    if bundle.settings is not None:
        lines.append(f"cp -Lf {TASKS_MOUNT}/{SETTINGS_KEY} {BASSI_HOME}/schedd.toml")
    for _, path, _ in bundle.files:
        folder = path.rpartition("/")[0]
        if folder:
            lines.append(f'mkdir -p "$T"/{shlex.quote(folder)}')
        lines.append(f'cp -Lf {TASKS_MOUNT}/{shlex.quote(path)} "$T"/{shlex.quote(path)}')
    return "\n".join(lines)


def _metadata(name: str, namespace: str | None, labels: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = labels
    return meta


def is_dns_label(text: str) -> bool:
    """A valid namespace name: lowercase letters, digits and '-', at most 63 characters."""
    return len(text) <= 63 and _DNS_LABEL.match(text) is not None


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (prompts, task files) as literal blocks, readable in the YAML; no
    anchors and aliases for the label maps the objects share (kubectl takes them, people and
    some tools do not)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(docs: Iterable[dict[str, Any]]) -> str:
    """The documents as one multi-document YAML stream."""
    return yaml.dump_all(
        list(docs),
        Dumper=_Dumper,
        sort_keys=False,
        explicit_start=True,
        allow_unicode=True,
        width=100,
    )
