"""Field checkers shared by task files and schedd.toml.

Checkers raise :class:`FieldError` (a dotted key plus a short reason); the loaders turn that into
a :class:`~bassi_schedd.core.errors.TaskFileError` naming the file and, where it can, the line.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Collection, Mapping
from datetime import date, datetime, time
from typing import Any, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bassi_schedd.config.tomlfile import FieldError
from bassi_schedd.core import limits
from bassi_schedd.core.durations import parse_duration_s
from bassi_schedd.core.limits import Limit
from bassi_schedd.core.spec import BudgetSpec, NotifyEvent, NotifySpec

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NOTIFY_EVENTS = ("success", "failure", "timeout", "missed", "recovered", "changed", "budget")
BUDGET_KEYS = ("daily_usd", "monthly_usd")
NOTIFY_KEYS = ("on", "command", "desktop")


def kind_of(value: object) -> str:
    """A TOML-flavoured name for a value's type, never the value (env values, URLs: secrets)."""
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a number"),
        (str, "a string"),
        (list, "a list"),
        (dict, "a table"),
        ((datetime, date, time), "a date-time"),
    ]
    return next((n for t, n in kinds if isinstance(value, t)), type(value).__name__)


def describe(value: object) -> str:
    """A TOML-flavoured name for a value's type, with the value when it is short."""
    name = kind_of(value)
    if isinstance(value, bool):
        return f"{name} ({str(value).lower()})"
    if isinstance(value, int | float | str) and len(repr(value)) <= 40:
        return f"{name} ({value!r})"
    return name


def reject_unknown(table: Mapping[str, Any], known: Collection[str], prefix: str = "") -> None:
    """Unknown keys are errors; suggest the closest known key when one is near."""
    for key in table:
        if key in known:
            continue
        close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else f" (known keys: {', '.join(known)})"
        raise FieldError(prefix + key, f"unknown key{hint}")


def check_table(value: object, key: str) -> dict[str, Any]:
    """The value must be a TOML table."""
    if not isinstance(value, dict):
        raise FieldError(key, f"must be a table, got {describe(value)}")
    return value


def check_str(value: object, key: str, *, non_empty: bool = False) -> str:
    """A string (without NUL, which no file name, argument or variable may hold)."""
    if not isinstance(value, str):
        raise FieldError(key, f"must be a string, got {describe(value)}")
    if non_empty and not value.strip():
        raise FieldError(key, "must not be empty")
    if "\0" in value:
        raise FieldError(key, "must not contain a NUL character")
    return value


def check_bool(value: object, key: str) -> bool:
    """true or false."""
    if not isinstance(value, bool):
        raise FieldError(key, f"must be true or false, got {describe(value)}")
    return value


def check_int(value: object, key: str, low: int, high: int | None = None) -> int:
    """An integer in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(key, f"must be an integer, got {describe(value)}")
    if value < low or (high is not None and value > high):
        span = f"at least {low}" if high is None else f"between {low} and {high}"
        raise FieldError(key, f"must be {span}, got {value}")
    return value


def check_count(value: object, key: str, limit: Limit) -> int:
    """An integer inside ``limit``."""
    return check_int(value, key, int(limit.low), int(limit.high))


def check_number(value: object, key: str, limit: Limit) -> float:
    """A finite number inside ``limit``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(key, f"must be a number, got {describe(value)}")
    if not math.isfinite(value) or not limit.allows(value):
        raise FieldError(key, f"must be a number {limit.span()}, got {_short(value)}")
    return float(value)


def check_duration(value: object, key: str, limit: Limit) -> float:
    """A duration ("90s", "30m", "2h", "1d" or seconds) inside ``limit``."""
    try:
        seconds = parse_duration_s(value)
    except ValueError as e:
        raise FieldError(key, str(e)) from None
    if not math.isfinite(seconds) or not limit.allows(seconds):
        raise FieldError(key, f"must be {limit.span()}, got {_short(value)}")
    return seconds


_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNIT = {"": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def check_size(value: object, key: str, limit: Limit) -> int:
    """A byte count inside ``limit``: an integer or "10MB", "512KB", "1GB" (units of 1024)."""
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
        digits = m.group(1).lstrip("0") or "0"
        # int() refuses very long digit strings (ValueError); such a size is out of range anyway.
        size = int(digits) * _SIZE_UNIT[unit] if len(digits) <= 30 else 1 << 128
    if not limit.allows(size):
        raise FieldError(key, f"must be {limit.span()}, got {_short(value)}")
    return size


def _short(value: object) -> str:
    """A value for a message: its repr, cut so a hostile file cannot flood the terminal."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_choice(value: object, key: str, choices: Collection[str]) -> str:
    """One of a fixed set of strings."""
    text = check_str(value, key)
    if text not in choices:
        close = difflib.get_close_matches(text, list(choices), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        options = ", ".join(repr(c) for c in choices)
        raise FieldError(key, f"must be one of {options}, got {text!r}{hint}")
    return text


def check_str_list(value: object, key: str, *, non_empty: bool) -> tuple[str, ...]:
    """A list of non-empty strings (and at least one when ``non_empty``)."""
    if not isinstance(value, list):
        raise FieldError(key, f"must be a list of strings, got {describe(value)}")
    if non_empty and not value:
        raise FieldError(key, "must not be an empty list")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise FieldError(key, f"item {i + 1} must be a string, got {describe(item)}")
        if not item:
            raise FieldError(key, f"item {i + 1} must not be an empty string")
        if "\0" in item:
            raise FieldError(key, f"item {i + 1} must not contain a NUL character")
    return tuple(cast(list[str], value))


def check_argv(value: object, key: str) -> tuple[str, ...]:
    """A command line as a list; ``~`` in the program path is expanded."""
    argv = check_str_list(value, key, non_empty=True)
    return (os.path.expanduser(argv[0]), *argv[1:])


def check_env_names(value: object, key: str) -> tuple[str, ...]:
    """A list of environment variable names."""
    names = check_str_list(value, key, non_empty=False)
    for name in names:
        if not ENV_NAME.match(name):
            raise FieldError(key, f"{name!r} is not a valid environment variable name")
    return names


def is_zone(name: str) -> bool:
    """Whether ``name`` is an IANA zone this system knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def check_zone(value: object, key: str) -> str:
    """An IANA zone name such as "Europe/Berlin"."""
    name = check_str(value, key, non_empty=True)
    if not is_zone(name):
        raise FieldError(key, f"unknown time zone {name!r} (use an IANA name like 'Europe/Berlin')")
    return name


def url_for_message(text: str) -> str:
    """What an error or log line may show of a URL: scheme and host (the rest can be a secret)."""
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "a URL that cannot be parsed (bad port or brackets)"
    if not host:
        return f"a {parts.scheme}: URL without a host" if parts.scheme else "no scheme://host"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}{'' if port is None else f':{port}'}/…"


def check_url(value: object, key: str) -> str:
    """An http or https URL with a host; "" means none (a task turns a schedd.toml default off).

    Errors show only the scheme and host: a ping URL's path or user info is its secret.
    """
    if not isinstance(value, str):
        raise FieldError(key, f"must be a string, got {kind_of(value)}")
    if value == "":
        return value
    problem = f"must be an http:// or https:// URL, got {url_for_message(value)}"
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise FieldError(key, problem) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise FieldError(key, problem)
    if any(c.isspace() or not c.isprintable() for c in value):
        raise FieldError(key, "must not contain spaces or control characters")
    return value


def check_notify(value: object, key: str) -> NotifySpec:
    """The ``notify`` table: ``on`` (events), ``command`` (argv), ``desktop`` (bool)."""
    table = check_table(value, key)
    reject_unknown(table, NOTIFY_KEYS, f"{key}.")
    on = NotifySpec.on
    if "on" in table:
        events = check_str_list(table["on"], f"{key}.on", non_empty=False)
        for event in events:
            check_choice(event, f"{key}.on", NOTIFY_EVENTS)
        on = cast(tuple[NotifyEvent, ...], tuple(dict.fromkeys(events)))
    command = check_argv(table["command"], f"{key}.command") if "command" in table else None
    desktop = check_bool(table["desktop"], f"{key}.desktop") if "desktop" in table else False
    return NotifySpec(on=on, command=command, desktop=desktop)


def check_budget(value: object, key: str) -> BudgetSpec:
    """The ``[budget]`` table: ``daily_usd`` and ``monthly_usd``, each a number >= 0."""
    table = check_table(value, key)
    reject_unknown(table, BUDGET_KEYS, f"{key}.")
    daily = monthly = None
    if "daily_usd" in table:
        daily = check_number(table["daily_usd"], f"{key}.daily_usd", limits.DAILY_USD)
    if "monthly_usd" in table:
        monthly = check_number(table["monthly_usd"], f"{key}.monthly_usd", limits.MONTHLY_USD)
    return BudgetSpec(daily_usd=daily, monthly_usd=monthly)
