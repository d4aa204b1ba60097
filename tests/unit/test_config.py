"""schedd.toml: defaults, every key, every error; and how the system zone is found."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bassi_schedd.config.paths import Home
from bassi_schedd.config.settings import _zone_from_path, load_config, system_timezone
from bassi_schedd.core.errors import TaskFileError, UserError
from bassi_schedd.core.spec import DEFAULT_PASS_ENV, NotifySpec


def write_config(home: Home, body: str, mode: int = 0o600) -> Path:
    home.config_file.write_text(body, encoding="utf-8")
    home.config_file.chmod(mode)
    return home.config_file


def test_missing_file_gives_defaults(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    config = load_config(home)
    assert config.timezone == "Asia/Tokyo"
    assert config.max_concurrent == 4
    assert config.runner is None
    assert config.pass_env == DEFAULT_PASS_ENV
    assert (config.log_max_bytes, config.log_backups) == (10 * 1024 * 1024, 5)
    assert config.notify is None and config.healthcheck_url is None
    # SPEC 5's 10 s between SIGTERM and SIGKILL; a notify program's 30 s
    assert (config.kill_grace_s, config.notify_timeout_s) == (10.0, 30.0)


def test_kill_grace_and_notify_timeout(home: Home) -> None:
    write_config(home, 'kill_grace = "3s"\nnotify_timeout = "1m"\n')
    config = load_config(home)
    assert (config.kill_grace_s, config.notify_timeout_s) == (3.0, 60.0)
    for bad, key in (
        ('kill_grace = "0s"', "kill_grace"),
        ('notify_timeout = "1h"', "notify_timeout"),
    ):
        write_config(home, bad + "\n")
        with pytest.raises(TaskFileError) as e:
            load_config(home)
        assert key in str(e.value) and str(home.config_file) in str(e.value)


def test_every_key(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    write_config(
        home,
        """
max_concurrent = 2
timezone = "Europe/Berlin"
runner = ["~/bin/bassi", "execute"]
pass_env = ["OPENAI_API_KEY"]
log_max_bytes = "2MB"
log_backups = 3
keep_runs_days = 7
keep_runs = 50
healthcheck_url = "https://hc-ping.com/abc"

[notify]
on = ["failure", "missed", "failure"]
command = ["notify-send", "bassi"]
desktop = true
""",
    )
    c = load_config(home)
    assert c.max_concurrent == 2
    assert c.timezone == "Europe/Berlin"
    assert c.runner == ("/home/someone/bin/bassi", "execute")
    assert c.pass_env == ("OPENAI_API_KEY",)
    assert c.log_max_bytes == 2 * 1024 * 1024
    assert (c.log_backups, c.keep_runs_days, c.keep_runs) == (3, 7, 50)
    assert c.healthcheck_url == "https://hc-ping.com/abc"
    assert c.notify == NotifySpec(
        on=("failure", "missed"), command=("notify-send", "bassi"), desktop=True
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(8192, 8192), ('"512KB"', 512 * 1024), ('"1 GiB"', 1024**3), ('"64kb"', 65536)],
)
def test_log_size_forms(home: Home, value: object, expected: int) -> None:
    write_config(home, f"log_max_bytes = {value}\n")
    assert load_config(home).log_max_bytes == expected


@pytest.mark.parametrize(
    ("body", "key", "line", "fragment"),
    [
        ("max_concurent = 3\n", "max_concurent", 1, "did you mean 'max_concurrent'"),
        ("\nmax_concurrent = 0\n", "max_concurrent", 2, "between 1 and 1000"),
        ('max_concurrent = "4"\n', "max_concurrent", 1, "must be an integer"),
        ('timezone = "Berlin"\n', "timezone", 1, "unknown time zone 'Berlin'"),
        ("runner = []\n", "runner", 1, "must not be an empty list"),
        ('runner = "bassi execute"\n', "runner", 1, "must be a list of strings"),
        ('pass_env = ["MY-KEY"]\n', "pass_env", 1, "not a valid environment variable name"),
        ('log_max_bytes = "10 megs"\n', "log_max_bytes", 1, 'a size like "10MB"'),
        ("log_max_bytes = 100\n", "log_max_bytes", 1, "must be between 4KB and 1GB, got 100"),
        ('log_max_bytes = "2GB"\n', "log_max_bytes", 1, "between 4KB and 1GB, got '2GB'"),
        ('log_max_bytes = "1' + "0" * 5000 + '"\n', "log_max_bytes", 1, "between 4KB and 1GB"),
        ("log_backups = 0\n", "log_backups", 1, "between 1 and 100"),
        ("keep_runs_days = 0\n", "keep_runs_days", 1, "between 1 and 3650, got 0"),
        ("keep_runs_days = 999999\n", "keep_runs_days", 1, "between 1 and 3650, got 999999"),
        ("keep_runs = -1\n", "keep_runs", 1, "between 1 and 1000000, got -1"),
        ("keep_runs = 1000001\n", "keep_runs", 1, "between 1 and 1000000"),
        ("log_backups = 101\n", "log_backups", 1, "between 1 and 100"),
        ("max_concurrent = 1001\n", "max_concurrent", 1, "between 1 and 1000"),
        ('healthcheck_url = "hc-ping.com/x"\n', "healthcheck_url", 1, "http:// or https://"),
        ('[notify]\non = ["sometimes"]\n', "notify.on", 2, "must be one of"),
        ("[notify]\ncommand = []\n", "notify.command", 2, "must not be an empty list"),
        ('[notify]\ndesktop = "yes"\n', "notify.desktop", 2, "true or false"),
        ("[notify]\nemail = 1\n", "notify.email", 2, "unknown key"),
        ('notify = "failure"\n', "notify", 1, "must be a table"),
    ],
)
def test_bad_value_names_file_key_and_line(
    home: Home, body: str, key: str, line: int, fragment: str
) -> None:
    path = write_config(home, body)
    with pytest.raises(TaskFileError) as info:
        load_config(home)
    e = info.value
    assert (e.key, e.line) == (key, line)
    assert str(e).startswith(f"{path}:{line}: key '{key}': ")
    assert fragment in str(e)


def test_toml_syntax_error(home: Home) -> None:
    path = write_config(home, "max_concurrent = 2\ntimezone = \n")
    with pytest.raises(UserError, match=rf"^{path}:2: is not valid TOML: "):
        load_config(home)


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_writable_by_others_is_refused(home: Home, mode: int) -> None:
    path = write_config(home, "max_concurrent = 2\n", mode)
    with pytest.raises(UserError, match=r"-writable .*chmod go-w") as info:
        load_config(home)
    assert str(path) in str(info.value)


# -- system_timezone ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        (":America/New_York", "America/New_York"),
        ("/usr/share/zoneinfo/Asia/Tokyo", "Asia/Tokyo"),
    ],
)
def test_tz_variable_wins(monkeypatch: pytest.MonkeyPatch, tz: str, expected: str) -> None:
    monkeypatch.setenv("TZ", tz)
    assert system_timezone() == expected


@pytest.mark.parametrize("tz", ["CET-1CEST", "Not/AZone", "", "/etc/localtime"])
def test_unusable_tz_falls_back_to_the_system(monkeypatch: pytest.MonkeyPatch, tz: str) -> None:
    monkeypatch.setenv("TZ", tz)
    fallback = system_timezone()
    monkeypatch.delenv("TZ")
    assert fallback == system_timezone()
    # What this machine says, by the same rules, read independently here:
    if os.path.islink("/etc/localtime"):
        assert os.readlink("/etc/localtime").endswith("zoneinfo/" + fallback)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/var/db/timezone/zoneinfo/Europe/Berlin", "Europe/Berlin"),  # macOS
        ("../usr/share/zoneinfo/posix/Europe/Paris", "Europe/Paris"),
        ("/usr/share/zoneinfo/right/UTC", "UTC"),
        ("/etc/some/other", None),
        ("Europe/Rome", "Europe/Rome"),
    ],
)
def test_zone_from_path(value: str, expected: str | None) -> None:
    assert _zone_from_path(value) == expected
