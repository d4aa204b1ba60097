"""Reliability: hostile task files and schedule strings never crash the loader, check or parser.

Property-based (hypothesis, derandomized so CI sees the same examples every run). Whatever is in
a task file - TOML-ish noise, well-formed TOML with wrong types, a valid task with one key
mangled, random bytes or invalid UTF-8 - ``load_task_file`` raises only ``TaskFileError``, with a
one-line message naming the file; ``TaskLoader.load`` and ``check`` report it and go on with the
other files. ``parse_schedule`` raises only ``ScheduleError``, and what it accepts can be iterated.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bassi_schedd.cli.tasks import cmd_check
from bassi_schedd.config.loader import TaskLoader, load_task_file
from bassi_schedd.config.paths import Home
from bassi_schedd.config.taskfile import AGENT_KEYS, TASK_KEYS
from bassi_schedd.core.errors import TaskFileError, printable
from bassi_schedd.core.schedule import ScheduleError, next_times, parse_schedule, scheduled_times
from bassi_schedd.core.spec import DaemonConfig, TaskSpec

CONFIG = DaemonConfig(timezone="UTC")
SIZES = [pytest.param(60, id="fast"), pytest.param(1500, id="soak", marks=pytest.mark.soak)]
# An internal exception the loader's catch-all turned into an error: a bug, not a bad file.
CAUGHT_BUG = "could not be loaded ("


def run_property(examples: int, strategy: st.SearchStrategy[Any], check: Callable[[Any], None]):
    """Run ``check`` on ``examples`` derandomized examples of ``strategy``."""
    prop = settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )(given(strategy)(check))
    prop()


# -- strategies ---------------------------------------------------------------------------------

_TOMLISH = list("[]{}=\"'#.,:-+_ \t\n\\") + list("abcxyz019TZ") + ["\r\n", '"""', "'''", "\x00"]
_WORDS = [
    *TASK_KEYS,
    *AGENT_KEYS,
    "true",
    "false",
    "inf",
    "nan",
    "[agent]",
    "[env]",
    "[notify]",
    "[[agent]]",
    "* * * * *",
    "2026-03-29T02:30:00",
    "1979-05-27",
    "07:32:00",
    "0x1F",
    "1e400",
]
tomlish_text = st.lists(
    st.one_of(st.sampled_from(_TOMLISH), st.sampled_from(_WORDS), st.text(max_size=4)), max_size=60
).map("".join)

scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["* * * * *", "90s", "1h", "-5m", "0", "~", "/", "UTC", "Mars/Olympus"]),
    st.dates(),
    st.times(),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.datetimes(timezones=st.just(UTC)),
)
toml_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8) | st.sampled_from(AGENT_KEYS), inner, max_size=4),
    ),
    max_leaves=10,
)
wrong_types_doc = st.dictionaries(
    st.sampled_from(TASK_KEYS) | st.text(max_size=10), toml_values, max_size=8
)

VALID_TASK: dict[str, Any] = {
    "description": "fuzz",
    "schedule": "*/5 * * * *",
    "timezone": "Europe/Berlin",
    "prompt": 'Summarise {date} as JSON {"a": 1}',
    "timeout": "30m",
    "on_missed": "all",
    "overlap": "queue",
    "retries": 2,
    "retry_delay": "1m",
    "jitter": "10s",
    "env": {"A": "b"},
    "agent": {"model": "m", "max_turns": 3, "allowed_tools": ["Read"]},
}


@st.composite
def mangled_task(draw: st.DrawFn) -> dict[str, Any]:
    """A valid task with one or two keys replaced, removed or added with a random value."""
    doc = dict(VALID_TASK)
    for _ in range(draw(st.integers(1, 2))):
        key = draw(st.sampled_from([*TASK_KEYS, *(f"agent.{k}" for k in AGENT_KEYS)]))
        op = draw(st.sampled_from(["set", "del"]))
        target, leaf = doc, key
        if key.startswith("agent."):
            agent = doc.get("agent")
            target, leaf = dict(agent) if isinstance(agent, dict) else {}, key.split(".", 1)[1]
            doc["agent"] = target
        if op == "del":
            target.pop(leaf, None)
        else:
            target[leaf] = draw(toml_values)
    return doc


_FIELD_OK = [
    ("*", "*/5", "0", "59", "0-30/7", "1,2,3", "15-45"),
    ("*", "*/3", "0", "23", "2", "9-17", "0-23", "8-18/2"),
    ("*", "1", "31", "L", "15W", "1-15", "*/10"),
    ("*", "1", "12", "JAN", "feb-mar", "*/4"),
    ("*", "MON", "mon-fri", "0", "7", "sun,7", "1#2", "5L"),
]
schedule_bad_tokens = st.sampled_from(
    [
        *("*/0", "*/61", "60", "5-1", "?", "H", "R", "-1", "99999999999999999999", "0x10"),
        *("1-", ",", "/", "L-2", "LW", "5#6", "DEC-JAN", "", "1#", "#1", "W", "32"),
    ]
)
cron_five = st.tuples(
    *(
        st.one_of(
            st.sampled_from(ok), st.sampled_from(ok), st.sampled_from(ok), schedule_bad_tokens
        )
        for ok in _FIELD_OK
    )
).map(" ".join)
cron_any_count = st.lists(
    st.one_of(st.sampled_from(sum(_FIELD_OK, ())), schedule_bad_tokens), max_size=8
).map(" ".join)
alias_like = st.tuples(
    st.sampled_from(["every", "daily", "weekdays", "monday", "Sun", "monthly", "@hourly", "@x"]),
    st.sampled_from(["", "0", "15m", "2h", "1d", "30s", "99999999d", "09:00", "24:00", "1 08:00"]),
    st.sampled_from(["", " ", "m", "x", "09:61", "32 08:00"]),
).map(" ".join)
schedule_text = st.one_of(cron_five, cron_five, cron_any_count, alias_like, st.text(max_size=30))


def write_raw(path: Path, raw: bytes) -> Path:
    path.write_bytes(raw)
    path.chmod(0o600)
    return path


def assert_names_file(error: TaskFileError, path: Path) -> None:
    message = str(error)
    # Control characters in a file name are shown escaped (errors.printable).
    assert printable(str(path)) in message, message
    assert CAUGHT_BUG not in message, message


@pytest.mark.parametrize("key", ["a\nb", "x\x1b[2Jy"])
def test_error_for_a_key_with_control_characters_is_one_printable_line(
    tmp_path: Path, key: str
) -> None:
    path = write_raw(tmp_path / "keys.toml", tomli_w.dumps({key: 1}).encode())
    with pytest.raises(TaskFileError) as e:
        load_task_file(path, CONFIG)
    assert str(path) in str(e.value)
    assert str(e.value).isprintable(), repr(str(e.value))


# -- load_task_file -----------------------------------------------------------------------------


def load_bytes(tmp_path: Path, raw: bytes, name: str = "fuzz") -> TaskSpec | None:
    """load_task_file on ``raw``: a spec, or None after checking the error names the file."""
    path = write_raw(tmp_path / f"{name}.toml", raw)
    try:
        spec = load_task_file(path, CONFIG)
    except TaskFileError as e:
        assert_names_file(e, path)
        return None
    assert isinstance(spec, TaskSpec)
    assert spec.name == name
    return spec


@pytest.mark.parametrize("examples", SIZES)
def test_tomlish_noise_only_raises_task_file_error(tmp_path: Path, examples: int) -> None:
    run_property(examples, tomlish_text, lambda text: load_bytes(tmp_path, text.encode()))


@pytest.mark.parametrize("examples", SIZES)
def test_random_bytes_and_invalid_utf8_only_raise_task_file_error(
    tmp_path: Path, examples: int
) -> None:
    invalid_utf8 = st.tuples(tomlish_text, st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"]))
    raw = st.one_of(st.binary(max_size=200), invalid_utf8.map(lambda p: p[0].encode() + p[1]))

    def check(data: bytes) -> None:
        if load_bytes(tmp_path, data) is not None:
            data.decode("utf-8")  # only valid UTF-8 can ever load

    run_property(examples, raw, check)


@pytest.mark.parametrize("examples", SIZES)
def test_wrong_types_in_valid_toml_only_raise_task_file_error(
    tmp_path: Path, examples: int
) -> None:
    def check(doc: dict[str, Any]) -> None:
        try:
            text = tomli_w.dumps(doc)
        except (TypeError, ValueError):
            return  # not representable as TOML (a time with a zone...): nothing to load
        load_bytes(tmp_path, text.encode())

    run_property(examples, wrong_types_doc, check)


@pytest.mark.parametrize("examples", SIZES)
def test_a_valid_task_with_a_mangled_key_loads_or_names_the_key(
    tmp_path: Path, examples: int
) -> None:
    def check(doc: dict[str, Any]) -> None:
        try:
            text = tomli_w.dumps(doc)
        except (TypeError, ValueError):
            return
        path = write_raw(tmp_path / "mangled.toml", text.encode())
        try:
            spec = load_task_file(path, CONFIG)
        except TaskFileError as e:
            assert_names_file(e, path)
            return
        # What loads is usable by the daemon: its schedule iterates, its numbers are sane.
        assert math.isfinite(spec.timeout_s) and spec.timeout_s > 0
        assert math.isfinite(spec.retry_delay_s) and spec.retry_delay_s >= 0
        assert math.isfinite(spec.jitter_s) and spec.jitter_s >= 0
        assert spec.on_missed in ("skip", "latest", "all")
        assert spec.overlap in ("skip", "queue", "replace", "allow")
        assert_iterates(spec.schedule, spec.zone)

    run_property(examples, mangled_task(), check)


def test_the_unmangled_task_is_valid(tmp_path: Path) -> None:
    # Guards the mangling test: its base must load, so each failure comes from the mangled key.
    spec = load_bytes(tmp_path, tomli_w.dumps(VALID_TASK).encode())
    assert spec is not None and spec.overlap == "queue"


@pytest.mark.parametrize("examples", SIZES)
def test_random_file_names_are_reported_by_file(tmp_path: Path, examples: int) -> None:
    stems = st.text(
        st.characters(blacklist_characters="/\x00", blacklist_categories=["Cs"]),
        min_size=1,
        max_size=40,
    ).filter(lambda s: s not in (".", "..") and len(s.encode()) <= 200)
    body = b'schedule = "@daily"\ncommand = ["/bin/true"]\n'

    def check(stem: str) -> None:
        path = write_raw(tmp_path / f"{stem}.toml", body)
        try:
            load_task_file(path, CONFIG)
        except TaskFileError as e:
            assert_names_file(e, path.absolute())
        finally:
            path.unlink()

    run_property(examples, stems, check)


# -- the daemon's loader and the check command --------------------------------------------------

hostile_file = st.one_of(
    tomlish_text.map(str.encode),
    st.binary(max_size=120),
    wrong_types_doc.map(lambda d: _dump_or_empty(d).encode()),
    mangled_task().map(lambda d: _dump_or_empty(d).encode()),
)


def _dump_or_empty(doc: dict[str, Any]) -> str:
    try:
        return tomli_w.dumps(doc)
    except (TypeError, ValueError):
        return ""


GOOD_TASK = b'schedule = "* * * * *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n'


@pytest.mark.parametrize(
    "examples", [pytest.param(25, id="fast"), pytest.param(400, id="soak", marks=pytest.mark.soak)]
)
def test_loader_and_check_survive_a_folder_of_hostile_files(tmp_path: Path, examples: int) -> None:
    counter = iter(range(10**9))

    def check(files: list[bytes]) -> None:
        home = Home(tmp_path / f"home{next(counter)}")
        home.ensure()
        write_raw(home.tasks_dir / "good.toml", GOOD_TASK)
        paths = [write_raw(home.tasks_dir / f"t{i}.toml", raw) for i, raw in enumerate(files)]
        result = TaskLoader(home, CONFIG).load()
        assert "good" in result.tasks, result.errors  # one bad file never stops the others
        assert set(result.tasks) | set(result.errors) == {"good", *(p.stem for p in paths)}
        for key, error in result.errors.items():
            assert_names_file(error, home.tasks_dir / f"{key}.toml")

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = cmd_check(argparse.Namespace(files=[]), home)
        lines = out.getvalue().splitlines()
        assert rc == (1 if result.errors else 0)
        # One report per file: errors are escaped to one printable line (see the control-char test).
        reports = [x for x in lines if x.startswith(("ok ", f"error {home.tasks_dir}/"))]
        assert len(reports) == 1 + len(paths), lines
        for key in result.errors:
            assert any(line.startswith(f"error {home.tasks_dir / key}.toml") for line in lines), (
                key,
                lines,
            )
        for name in result.tasks:
            assert f"ok {name}" in lines

    run_property(examples, st.lists(hostile_file, min_size=1, max_size=5), check)


# -- schedule strings ---------------------------------------------------------------------------

ZONES = [ZoneInfo(z) for z in ("UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe")]


def assert_iterates(schedule: Any, zone: ZoneInfo) -> None:
    """A parsed schedule yields ascending, aware times after any instant, and no error."""
    if schedule.kind == "at":
        return
    after = datetime(2026, 3, 1, tzinfo=UTC)
    times = next_times(schedule, zone, after, 3)
    utc = [t.astimezone(UTC) for t in times]
    assert utc == sorted(set(utc)) and all(t > after for t in utc)
    window = scheduled_times(schedule, zone, after, after + timedelta(days=2), limit=50)
    assert all(after < t.astimezone(UTC) <= after + timedelta(days=2) for t in window)


@pytest.mark.parametrize(
    "examples",
    [pytest.param(150, id="fast"), pytest.param(5000, id="soak", marks=pytest.mark.soak)],
)
def test_parse_schedule_only_raises_schedule_error(examples: int) -> None:
    def check(args: tuple[str, ZoneInfo]) -> None:
        text, zone = args
        try:
            schedule = parse_schedule(text)
        except ScheduleError as e:
            assert str(e) and "\n" not in str(e)
            return
        assert schedule.text == text
        assert_iterates(schedule, zone)

    run_property(examples, st.tuples(schedule_text, st.sampled_from(ZONES)), check)


def test_fuzz_inputs_cover_both_outcomes(tmp_path: Path) -> None:
    # The strategies must reach deep: some mangled tasks load, some schedules parse.
    loaded = []

    def check(doc: dict[str, Any]) -> None:
        text = _dump_or_empty(doc)
        with contextlib.suppress(TaskFileError):
            loaded.append(load_task_file(write_raw(tmp_path / "m.toml", text.encode()), CONFIG))

    run_property(60, mangled_task(), check)
    assert loaded, "no mangled task ever loaded: the strategy only tests the first check"
    parsed = []

    def parse(text: str) -> None:
        with contextlib.suppress(ScheduleError):
            parsed.append(parse_schedule(text))

    run_property(150, schedule_text, parse)
    assert len(parsed) >= 5, parsed
    assert {s.kind for s in parsed} >= {"cron"}
