"""``schedd.toml`` (daemon settings and task defaults) and the system time zone."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from bassi_schedd.errors import TaskFileError
from bassi_schedd.paths import Home
from bassi_schedd.spec import DaemonConfig
from bassi_schedd.tomlfile import FieldError, file_error, read_checked_toml
from bassi_schedd.validate import (
    check_argv,
    check_env_names,
    check_int,
    check_notify,
    check_url,
    check_zone,
    describe,
    is_zone,
    reject_unknown,
)

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
)

_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNIT = {"": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
MIN_LOG_BYTES = 4096


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


def parse_size_bytes(value: object, key: str) -> int:
    """A byte count: an integer or a string like "10MB", "512KB", "1GB" (units of 1024)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise FieldError(
            key, f'must be a size like "10MB" or a number of bytes, got {describe(value)}'
        )
    if isinstance(value, int):
        size = value
    else:
        m = _SIZE.match(value)
        if not m:
            raise FieldError(key, f'must be a size like "10MB", "512KB" or "1GB", got {value!r}')
        unit = (m.group(2) or "").lower().replace("ib", "b")
        size = int(m.group(1)) * _SIZE_UNIT[unit]
    if size < MIN_LOG_BYTES:
        raise FieldError(key, f"must be at least {MIN_LOG_BYTES} bytes, got {value!r}")
    return size


def config_from_dict(data: dict[str, Any]) -> DaemonConfig:
    """Validate a parsed schedd.toml; raises :class:`FieldError` for the first bad key."""
    reject_unknown(data, CONFIG_KEYS)
    values: dict[str, Any] = {}
    values["timezone"] = (
        check_zone(data["timezone"], "timezone") if "timezone" in data else system_timezone()
    )
    if "max_concurrent" in data:
        values["max_concurrent"] = check_int(data["max_concurrent"], "max_concurrent", 1, 1000)
    if "runner" in data:
        values["runner"] = check_argv(data["runner"], "runner")
    if "pass_env" in data:
        values["pass_env"] = check_env_names(data["pass_env"], "pass_env")
    if "log_max_bytes" in data:
        values["log_max_bytes"] = parse_size_bytes(data["log_max_bytes"], "log_max_bytes")
    if "log_backups" in data:
        values["log_backups"] = check_int(data["log_backups"], "log_backups", 1, 100)
    if "keep_runs_days" in data:
        values["keep_runs_days"] = check_int(data["keep_runs_days"], "keep_runs_days", 1)
    if "keep_runs" in data:
        values["keep_runs"] = check_int(data["keep_runs"], "keep_runs", 1)
    if "notify" in data:
        values["notify"] = check_notify(data["notify"], "notify")
    if "healthcheck_url" in data:
        values["healthcheck_url"] = check_url(data["healthcheck_url"], "healthcheck_url")
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
