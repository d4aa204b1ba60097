"""Durations as users write them: "90s", "30m", "2h", "1d", or a number of seconds."""

from __future__ import annotations

import re

_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration_s(value: object) -> float:
    """Return seconds for a duration; raise ValueError with a short reason when malformed."""
    if isinstance(value, bool):
        raise ValueError('expected a duration like "90s", "30m", "2h" or "1d", got a boolean')
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(
            f'expected a duration like "90s", "30m", "2h" or "1d", got {type(value).__name__}'
        )
    m = _DURATION.match(value)
    if not m:
        raise ValueError(f'expected a duration like "90s", "30m", "2h" or "1d", got {value!r}')
    return float(m.group(1)) * _UNIT_S[m.group(2) or "s"]


def format_duration_s(seconds: float) -> str:
    """Short human form: 42s, 3m05s, 2h10m, 1d2h."""
    s = round(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 and seconds != int(seconds) else f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"
