"""Hostile-input soak: a running daemon keeps its healthy task going while the home is attacked.

A generator writes, from a fixed seed, every class of hostile input found so far into a live
home - broken and deeply nested TOML, byte-order marks, invalid UTF-8, huge files, FIFOs as task
and prompt files, /proc prompt files, names that are not UTF-8 or hold terminal escapes, times at
the calendar's ends, absurd durations, a task named `schedd`, symlink loops, group-writable
files, prompt files re-saved as garbage between tick and start, `tasks/` replaced by a file, and
hostile `schedd.toml` values - and SIGHUPs the daemon after each. Throughout: the daemon never
exits or stalls, the CLI never prints a traceback, no secret reaches the log, and the healthy
task runs (every minute in the soak variant, on `trigger` in the fast one).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support import Start, runs, wait_for

from bassi_schedd.config.paths import Home

SECRET = "hs-Zq9x7Lw2Vt5Rk8Pm3Nb6"  # an env value that must never be logged
HEALTHY = 'schedule = "* * * * *"\ntimezone = "UTC"\ncommand = ["/bin/sh", "-c", "echo ok"]\n'
STRICT_UTF8 = {"PYTHONIOENCODING": "utf-8:strict"}


class Attacker:
    """Writes one hostile input at a time into ``home``; remembers what to clean up."""

    def __init__(self, home: Home, rng: random.Random):
        self.home = home
        self.rng = rng
        self.n = 0
        self.made: list[Path] = []

    @property
    def tasks(self) -> Path:
        return self.home.tasks_dir

    def _path(self, suffix: str = ".toml") -> Path:
        self.n += 1
        path = self.tasks / f"h{self.n}{suffix}"
        self.made.append(path)
        return path

    def _write(self, data: bytes | str, suffix: str = ".toml", mode: int = 0o600) -> Path:
        path = self._path(suffix)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        path.chmod(mode)
        return path

    # -- the classes of hostile input ------------------------------------------------------------

    def broken_toml(self) -> None:
        noise = "".join(self.rng.choice("[]{}=\"'#.,:-+_ \n\\abc019TZ") for _ in range(80))
        self._write(noise)

    def deep_nesting(self) -> None:
        depth = self.rng.choice([100, 500, 5000])
        self._write("x = " + "[" * depth + "]" * depth + "\n" + HEALTHY)

    def byte_order_mark(self) -> None:
        self._write(b"\xef\xbb\xbf" + HEALTHY.encode())

    def invalid_utf8(self) -> None:
        self._write(b'schedule = "@daily"\ncommand = ["/bin/true"]\ndescription = "caf\xe9"\n')

    def huge_file(self) -> None:
        self._write("# padding\n" * 250_000 + HEALTHY)  # 2.5 MB

    def fifo_task(self) -> None:
        os.mkfifo(self._path(), 0o600)

    def fifo_prompt(self) -> None:
        prompt = self._path(".md")
        os.mkfifo(prompt, 0o600)
        self._write(f'schedule = "* * * * *"\ntimezone = "UTC"\nprompt_file = "{prompt.name}"\n')

    def proc_prompt(self) -> None:
        target = self.rng.choice(["/proc/kmsg", "/proc/self/environ", "/dev/zero", "/sys/power"])
        self._write(f'schedule = "* * * * *"\ntimezone = "UTC"\nprompt_file = "{target}"\n')

    def odd_name(self) -> None:
        stem = self.rng.choice([b"caf\xe9", b"new\nline", b"esc\x1b[31mred", b"tab\tname", b" "])
        self.n += 1
        path = Path(os.fsdecode(bytes(self.tasks).rstrip(b"/") + b"/" + stem + b"%d.toml" % self.n))
        path.write_bytes(HEALTHY.encode())
        path.chmod(0o600)
        self.made.append(path)

    def calendar_ends(self) -> None:
        at, zone = self.rng.choice(
            [
                ("9999-12-31T23:59", "America/Los_Angeles"),
                ("0001-01-01T00:00", "Asia/Tokyo"),
                ("9999-12-31T23:59", "Pacific/Kiritimati"),
                ("1900-01-01T00:00", "UTC"),
            ]
        )
        self._write(f'at = "{at}"\ntimezone = "{zone}"\ncommand = ["/bin/true"]\n')

    def absurd_durations(self) -> None:
        key = self.rng.choice(["jitter", "timeout", "retry_delay", "missed_deadline"])
        value = self.rng.choice(['"99999999d"', "1e300", "-5", '"0s"', "9223372036854775807"])
        self._write(HEALTHY + f"{key} = {value}\n")

    def absurd_counts(self) -> None:
        key = self.rng.choice(["retries", "max_output"])
        value = self.rng.choice(["-1", "9223372036854775807", "1e9", '"999999TB"'])
        self._write(HEALTHY + f"{key} = {value}\n")

    def task_named_schedd(self) -> None:
        path = self.tasks / "schedd.toml"
        path.write_text(self.rng.choice(["max_concurrent = 1\n", HEALTHY, "x = [[[\n"]))
        path.chmod(0o600)
        self.made.append(path)

    def symlinks(self) -> None:
        a, b = self._path(), self._path()
        if self.rng.random() < 0.5:
            a.symlink_to(b.name)
            b.symlink_to(a.name)  # a loop
        else:
            a.symlink_to(self.tasks / "does-not-exist.toml")

    def group_writable(self) -> None:
        self._write(HEALTHY, mode=0o620)

    def secret_in_env(self) -> None:
        bad = self.rng.choice(["timeout = []", 'schedule = "61 * * * *"', 'bogus_key = "x"', ""])
        self._write(
            f'schedule = "0 0 1 1 *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n'
            f'env = {{ API_TOKEN = "{SECRET}", N = 12345678 }}\n{bad}\n'
        )

    def prompt_turns_to_garbage(self) -> None:
        prompt = self._path(".md")
        prompt.write_text("Say hi to {task_name}\n")
        prompt.chmod(0o600)
        self._write(
            'schedule = "* * * * *"\ntimezone = "UTC"\njitter = "50s"\n'
            f'prompt_file = "{prompt.name}"\n'
        )
        self.later = lambda: prompt.write_bytes(b"\xff\xfe\x00garbage\xc3")

    def tasks_folder_becomes_a_file(self) -> None:
        aside = self.home.root / "tasks.aside"
        self.tasks.rename(aside)
        self.tasks.write_text("not a folder\n")
        self.tasks.chmod(0o600)
        self.later = lambda: (self.tasks.unlink(), aside.rename(self.tasks))

    def hostile_schedd_toml(self) -> None:
        body = self.rng.choice(
            [
                "keep_runs_days = 999999\n",
                "max_concurrent = -1\n",
                "x = " + "[" * 3000 + "]" * 3000 + "\n",
                'timezone = "Mars/Olympus"\n',
                "log_max_bytes = 1e400\n",
                b"\xef\xbb\xbfmax_concurrent = 2\n".decode(),
                '[[[\n"unterminated',
                'timezone = "Asia/Tokyo"\n',  # valid: a reload must not disturb the healthy task
                "",
            ]
        )
        self.home.config_file.write_text(body)
        self.home.config_file.chmod(0o600)

    ATTACKS = (
        "broken_toml deep_nesting byte_order_mark invalid_utf8 huge_file fifo_task fifo_prompt "
        "proc_prompt odd_name calendar_ends absurd_durations absurd_counts task_named_schedd "
        "symlinks group_writable secret_in_env prompt_turns_to_garbage tasks_folder_becomes_a_file "
        "hostile_schedd_toml"
    ).split()

    def attack(self, name: str) -> None:
        self.later: Callable[[], object] | None = None
        getattr(self, name)()

    def tidy(self, keep: int) -> None:
        """Remove the oldest hostile files beyond ``keep`` so the folder stays small."""
        while len(self.made) > keep:
            path = self.made.pop(0)
            if path.is_symlink() or path.exists():
                path.unlink()


def assert_clean_output(text: str, where: str) -> None:
    assert "Traceback" not in text, f"{where}: a traceback\n{text[-3000:]}"
    assert SECRET not in text and "12345678" not in text, f"{where}: a secret was printed"


def cli_is_calm(cli: Callable[..., object]) -> None:
    """status, list and check answer with one-sentence errors at most, never a traceback."""
    for args, codes in (
        (("status",), {0, 1, 2, 3}),
        (("list",), {0, 1, 2}),
        (("check",), {0, 1, 2}),
    ):
        r = cli(*args, env=STRICT_UTF8, timeout=60)
        assert r.returncode in codes, (args, r.returncode, r.stderr)  # type: ignore[attr-defined]
        assert_clean_output(r.stdout + r.stderr, " ".join(args))  # type: ignore[attr-defined]


def healthy_successes(home: Home, trigger: str) -> list[dict[str, object]]:
    return [
        r for r in runs(home, "healthy") if r["trigger"] == trigger and r["status"] == "success"
    ]


@pytest.mark.parametrize(
    "duration_s",
    [pytest.param(0, id="fast"), pytest.param(600, id="soak", marks=pytest.mark.soak)],
)
def test_the_daemon_survives_a_hostile_home(
    home: Home, write_task, daemon: Start, cli, duration_s: int
) -> None:
    write_task("healthy", HEALTHY)
    d = daemon()
    d.wait_ready()
    attacker = Attacker(home, random.Random(20261206))
    started = time.time()
    rounds = 0

    def one_round(name: str) -> None:
        attacker.attack(name)
        d.signal(signal.SIGHUP)
        if attacker.later is not None:
            time.sleep(attacker.rng.uniform(0.2, 1.5))  # let a tick see it, then change it again
            attacker.later()
            d.signal(signal.SIGHUP)
        assert d.proc.poll() is None, f"the daemon exited after {name}:\n{d.output()[-3000:]}"

    def calm_settings() -> None:
        """A valid schedd.toml again: the CLI refuses to trigger under a broken one."""
        home.config_file.write_text("")
        d.signal(signal.SIGHUP)

    # Every class once, then random ones until the time is up.
    for name in Attacker.ATTACKS:
        one_round(name)
        rounds += 1
    cli_is_calm(cli)
    calm_settings()
    before = len(healthy_successes(home, "manual"))
    assert cli("trigger", "healthy").returncode == 0
    wait_for(lambda: len(healthy_successes(home, "manual")) > before, 60)
    while time.time() - started < duration_s:
        one_round(attacker.rng.choice(Attacker.ATTACKS))
        attacker.tidy(keep=40)
        rounds += 1
        if rounds % 10 == 0:
            cli_is_calm(cli)
        time.sleep(attacker.rng.uniform(0.5, 3.0))

    # The daemon is alive and still ticking: a trigger now is served.
    calm_settings()
    before = len(healthy_successes(home, "manual"))
    assert cli("trigger", "healthy").returncode == 0
    wait_for(lambda: len(healthy_successes(home, "manual")) > before, 60)
    assert d.proc.poll() is None
    if duration_s:
        # Every whole minute of the soak had its healthy run.
        minutes = {r["scheduled_for"] for r in healthy_successes(home, "schedule")}
        assert len(minutes) >= duration_s // 60 - 1, sorted(minutes)  # type: ignore[type-var]
    d.stop()
    assert_clean_output(d.output(), "daemon output")
    log_text = home.log_file.read_text(errors="replace")
    assert_clean_output(log_text, "schedd.log")
    events = [json.loads(x).get("event") for x in log_text.splitlines() if x.startswith("{")]
    assert "daemon.error" not in events, "an unexpected exception was caught in the loop"
    shutil.rmtree(home.tasks_dir, ignore_errors=True)
