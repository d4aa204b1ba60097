"""``schedd.toml`` (daemon settings and task defaults) and the system time zone."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bassi_schedd.config.paths import Home
from bassi_schedd.config.tomlfile import FieldError, file_error, read_checked_toml
from bassi_schedd.config.validate import (
    check_argv,
    check_budget,
    check_count,
    check_duration,
    check_env_names,
    check_notify,
    check_size,
    check_url,
    check_zone,
    is_zone,
    reject_unknown,
)
from bassi_schedd.core import limits
from bassi_schedd.core.errors import TaskFileError
from bassi_schedd.core.spec import DaemonConfig

CONFIG_KEYS = (
    "max_concurrent",
    "timezone",
    "runner",
    "pass_env",
    "log_max_bytes",
    "log_backups",
    "keep_runs_days",
    "keep_runs",
    "notify",
    "healthcheck_url",
    "kill_grace",
    "notify_timeout",
    "budget",
)


def system_timezone() -> str:
    """The user's IANA zone: ``TZ`` if it names one, else /etc/localtime's target, else
    /etc/timezone, else "UTC"."""
    tz = os.environ.get("TZ", "").strip()
    if tz:
        candidate = _zone_from_path(tz.lstrip(":"))
        if candidate and is_zone(candidate):
            return candidate
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        target = ""
    candidate = _zone_from_path(target) if target else None
    if candidate and is_zone(candidate):
        return candidate
    try:
        text = Path("/etc/timezone").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    if text and is_zone(text):
        return text
    return "UTC"


def _zone_from_path(value: str) -> str | None:
    """ "Europe/Berlin" from itself or from ".../zoneinfo/[posix/]Europe/Berlin"."""
    if "zoneinfo/" in value:
        value = value.rsplit("zoneinfo/", 1)[1]
        for prefix in ("posix/", "right/"):
            value = value.removeprefix(prefix)
    elif value.startswith("/"):
        return None
    return value or None


def config_from_dict(data: dict[str, Any]) -> DaemonConfig:
    """Validate a parsed schedd.toml; raises :class:`FieldError` for the first bad key."""
    reject_unknown(data, CONFIG_KEYS)
    values: dict[str, Any] = {}
    values["timezone"] = (
        check_zone(data["timezone"], "timezone") if "timezone" in data else system_timezone()
    )
    if "max_concurrent" in data:
        values["max_concurrent"] = check_count(
            data["max_concurrent"], "max_concurrent", limits.MAX_CONCURRENT
        )
    if "runner" in data:
        values["runner"] = check_argv(data["runner"], "runner")
    if "pass_env" in data:
        values["pass_env"] = check_env_names(data["pass_env"], "pass_env")
    if "log_max_bytes" in data:
        values["log_max_bytes"] = check_size(
            data["log_max_bytes"], "log_max_bytes", limits.LOG_MAX_BYTES
        )
    if "log_backups" in data:
        values["log_backups"] = check_count(data["log_backups"], "log_backups", limits.LOG_BACKUPS)
    if "keep_runs_days" in data:
        values["keep_runs_days"] = check_count(
            data["keep_runs_days"], "keep_runs_days", limits.KEEP_RUNS_DAYS
        )
    if "keep_runs" in data:
        values["keep_runs"] = check_count(data["keep_runs"], "keep_runs", limits.KEEP_RUNS)
    if "notify" in data:
        values["notify"] = check_notify(data["notify"], "notify")
    if "healthcheck_url" in data:
        values["healthcheck_url"] = check_url(data["healthcheck_url"], "healthcheck_url")
    if "kill_grace" in data:
        values["kill_grace_s"] = check_duration(data["kill_grace"], "kill_grace", limits.KILL_GRACE)
    if "notify_timeout" in data:
        values["notify_timeout_s"] = check_duration(
            data["notify_timeout"], "notify_timeout", limits.NOTIFY_TIMEOUT
        )
    if "budget" in data:
        values["budget"] = check_budget(data["budget"], "budget")
    return DaemonConfig(**values)


def load_config(home: Home) -> DaemonConfig:
    """Read ``schedd.toml``; a missing file means defaults. Raises TaskFileError (a UserError)."""
    path = home.config_file
    if not path.exists():
        return DaemonConfig(timezone=system_timezone())
    data, text, _ = read_checked_toml(path)
    try:
        return config_from_dict(data)
    except FieldError as problem:
        raise file_error(path, text, problem) from None


__all__ = ["CONFIG_KEYS", "TaskFileError", "load_config", "system_timezone"]
