"""Warnings about task files that load but probably do not do what their author meant.

``check`` prints them (exit code unchanged); the daemon runs such tasks exactly as written.
Errors stay in taskfile.py: a warning is for a value that is valid but surprising.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import pairwise

from croniter import CroniterError, croniter

from bassi_schedd.config.tomlfile import FieldError
from bassi_schedd.core.cronexpr import FIELDS
from bassi_schedd.core.limits import show_duration
from bassi_schedd.core.policy import MAX_RETRY_DELAY_S
from bassi_schedd.core.schedule import next_times
from bassi_schedd.core.spec import TaskSpec

# Enough scheduled times to see a schedule's shortest gap (weekdays, DST days, `L`...).
_GAP_SAMPLE = 64
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_NAMES = {
    3: {m: i + 1 for i, m in enumerate(_MONTHS)},
    4: {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
}


def task_warnings(spec: TaskSpec, now: datetime) -> list[FieldError]:
    """Each surprising value of a valid task, as a key and one sentence."""
    out: list[FieldError] = []
    schedule = spec.schedule
    if schedule.kind == "at" and not next_times(schedule, spec.zone, now, 1):
        out.append(
            FieldError(
                "at",
                f"{schedule.text.strip()} is in the past; unless the daemon saw this task before "
                "then, it will never run",
            )
        )
    if schedule.kind == "cron" and schedule.cron is not None:
        out += [FieldError("schedule", m) for m in reversed_ranges(schedule.cron)]
    if spec.jitter_s > 0 and schedule.kind != "at":
        gap_s = shortest_gap_s(spec, now)
        if gap_s is not None and spec.jitter_s > gap_s:
            out.append(
                FieldError(
                    "jitter",
                    f"{show_duration(spec.jitter_s)} is longer than the schedule's shortest "
                    f"interval ({show_duration(gap_s)}), so a run may start after the next "
                    "scheduled time",
                )
            )
    if spec.retry_delay_s > MAX_RETRY_DELAY_S:
        out.append(
            FieldError(
                "retry_delay",
                f"{show_duration(spec.retry_delay_s)} is more than the 1h cap on retry "
                "delays, so retries wait 1h",
            )
        )
    return out


def shortest_gap_s(spec: TaskSpec, now: datetime) -> float | None:
    """The shortest time between two of the task's next scheduled times (None: fewer than 2)."""
    if spec.schedule.kind == "every" and spec.schedule.every_s is not None:
        return float(spec.schedule.every_s)
    # In UTC: Python subtracts two times of one zone by wall clock, ignoring DST.
    times = [t.astimezone(UTC) for t in next_times(spec.schedule, spec.zone, now, _GAP_SAMPLE)]
    gaps = [b - a for a, b in pairwise(times)]
    return min(gaps).total_seconds() if gaps else None


def reversed_ranges(expr: str) -> list[str]:
    """Sentences about cron ranges written high-to-low (``1-0``, ``22-2``, ``FRI-MON``).

    Classic cron refuses them; croniter accepts them and mostly wraps around (not always as one
    would guess: ``5-1/2`` does not), so each sentence says which values the field matches.
    """
    out = []
    for index, field in enumerate(expr.split()[:5]):
        for part in field.split(","):
            ends = part.split("/", 1)[0].split("-")
            if len(ends) != 2:
                continue
            lo, hi = (_number(index, e) for e in ends)
            if index == 4 and lo == 7:
                lo = 0  # 7 is Sunday too: 7-1 is SUN-MON, not backwards
            if lo is None or hi is None or lo <= hi:
                continue
            name, low, high = FIELDS[index][:3]
            probe = ["*"] * 5
            probe[index] = field
            try:
                expanded = croniter(" ".join(probe), datetime(2000, 1, 1)).expanded[index]
            except CroniterError:
                continue
            values = range(low, high + 1) if expanded[0] == "*" else sorted(set(expanded))
            out.append(
                f"{name} field {field!r}: the range {part!r} runs backwards (classic cron "
                f"refuses that); it matches {name} {_compact(values)}, so write that instead"
            )
    return out


def _number(index: int, text: str) -> int | None:
    if text.isdigit():
        return int(text)
    return _NAMES.get(index, {}).get(text.lower())


def _compact(values: Sequence[object]) -> str:
    """Cron notation for a value set: 0-59, 5-59/2, 0-2,22-23."""
    ints = [v for v in values if isinstance(v, int)]
    if len(ints) >= 3:
        step = ints[1] - ints[0]
        if step > 1 and all(b - a == step for a, b in pairwise(ints)):
            return f"{ints[0]}-{ints[-1]}/{step}"
    runs: list[list[int]] = []
    for v in ints:
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)
