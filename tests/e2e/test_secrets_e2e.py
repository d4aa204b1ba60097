"""Secrets and the log, through the real CLI and daemon: what is masked, and what never is.

Task ``env`` values that are not secrets ("info", "2026") must leave the log's structure alone
(``logs --task``/``--run`` still find the lines); secret ones are cut out of free text such as a
notify program's output; error messages about ``env`` values and URLs never quote them.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from support import Start, runs, wait_for

from bassi_schedd.config.paths import Home
from bassi_schedd.logs.setup import LEVELS

TS_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def log_lines(home: Home) -> list[dict[str, object]]:
    if not home.log_file.exists():
        return []
    return [json.loads(line) for line in home.log_file.read_text().splitlines() if line]


def test_short_env_values_leave_the_log_structure_and_filters_intact(
    home: Home, write_task, daemon: Start, cli
) -> None:
    # Every value here also appears in the log's own fields: the level, the year of every
    # timestamp, part of the event name, the task's name.
    year = datetime.now(UTC).year
    write_task(
        "nightly-report",
        f"""
        schedule = "0 0 1 1 *"
        timezone = "UTC"
        command = ["/bin/sh", "-c", "echo report written"]
        env = {{ LVL = "info", YEAR = "{year}", EVT = "start", NAME = "nightly-report" }}
        """,
    )
    write_task(
        "other",
        'schedule = "0 0 1 1 *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n',
    )
    d = daemon()
    d.wait_ready()
    for name in ("nightly-report", "other"):
        assert cli("trigger", name).returncode == 0
    wait_for(lambda: [r["status"] for r in runs(home)] == ["success", "success"], 30)
    wait_for(lambda: sum(line["event"] == "run.end" for line in log_lines(home)) == 2, 10)
    assert d.stop() == 0

    lines = log_lines(home)
    for line in lines:
        assert TS_RE.fullmatch(str(line["ts"])), line
        assert line["level"] in LEVELS, line
        assert "***" not in json.dumps(line), line
    run_id = str(runs(home, "nightly-report")[0]["run_id"])
    ends = [x for x in lines if x["event"] == "run.end"]
    assert sorted(str(x["task"]) for x in ends) == ["nightly-report", "other"]

    by_task = cli("logs", "--task", "nightly-report", "--json")
    assert by_task.returncode == 0, by_task.stderr
    events = [json.loads(x)["event"] for x in by_task.stdout.splitlines()]
    assert "run.start" in events and "run.end" in events
    by_run = cli("logs", "--run", run_id, "--json")
    assert by_run.returncode == 0, by_run.stderr
    found = [json.loads(x) for x in by_run.stdout.splitlines() if x.startswith("{")]
    assert {(x["event"], x["run_id"]) for x in found} >= {
        ("run.start", run_id),
        ("run.end", run_id),
    }


def test_secret_env_values_are_masked_in_a_notify_programs_output(
    home: Home, write_task, daemon: Start, cli
) -> None:
    token = "tok-9f8e7d6c5b4a"
    password = "hunter"  # short, but its name says what it is
    tell = "echo $API_TOKEN/$DB_PASS/$LVL; exit 1"  # child output: a free-text field
    write_task(
        "leaky",
        f"""
        schedule = "0 0 1 1 *"
        timezone = "UTC"
        command = ["/bin/sh", "-c", "exit 3"]
        env = {{ API_TOKEN = "{token}", DB_PASS = "{password}", LVL = "info" }}
        notify = {{ on = ["failure"], command = ["/bin/sh", "-c", "{tell}"] }}
        """,
    )
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "leaky").returncode == 0

    def failed_notice() -> dict[str, object] | None:
        return next((x for x in log_lines(home) if x["event"] == "notify.failed"), None)

    notice = wait_for(failed_notice, 30)
    assert d.stop() == 0
    assert isinstance(notice, dict)
    assert notice["task"] == "leaky" and notice["level"] == "warning"
    assert str(notice["output"]).strip() == "***/***/info"
    for where in (home.log_file.read_text(), d.output()):
        assert token not in where and f"/{password}/" not in where


# -- error messages about env values and URLs ------------------------------------------------

SECRET_NUMBER = "12345678"
URL_SECRET = "5f0c1d2e-secret-uuid"
URL_PASSWORD = "pa55word"
BAD_FILES = {
    # A number where a string belongs: the message must not echo it.
    "env-number": f"env = {{ TOKEN = {SECRET_NUMBER} }}\n",
    # A string where the table belongs.
    "env-string": f'env = "TOKEN={SECRET_NUMBER}"\n',
    # Not http(s): only the scheme and host may be shown, not the path or the password.
    "bad-url": f'healthcheck_url = "ftp://bob:{URL_PASSWORD}@hc.example.com/{URL_SECRET}"\n',
    "bad-port": f'healthcheck_url = "https://hc.example.com:99999/{URL_SECRET}"\n',
}
HEAD = 'schedule = "@daily"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n'


def assert_no_secret(text: str) -> None:
    for secret in (SECRET_NUMBER, URL_SECRET, URL_PASSWORD):
        assert secret not in text, text


def test_check_names_key_and_type_but_never_quotes_env_values_or_url_paths(
    home: Home, write_task, cli
) -> None:
    for name, body in BAD_FILES.items():
        write_task(name, HEAD + body)
    r = cli("check")
    assert r.returncode == 1
    assert_no_secret(r.stdout + r.stderr)
    lines = {}
    for line in r.stdout.splitlines():
        m = re.search(r"/tasks/([\w-]+)\.toml", line)
        if m:
            lines[m.group(1)] = line
    assert "env.TOKEN" in lines["env-number"] and "an integer" in lines["env-number"]
    assert "env" in lines["env-string"] and "a string" in lines["env-string"]
    assert "healthcheck_url" in lines["bad-url"] and "ftp://hc.example.com/" in lines["bad-url"]
    assert "healthcheck_url" in lines["bad-port"] and "cannot be parsed" in lines["bad-port"]


def test_the_daemon_logs_invalid_env_values_and_urls_without_the_secret(
    home: Home, write_task, daemon: Start, tmp_path: Path
) -> None:
    for name, body in BAD_FILES.items():
        write_task(name, HEAD + body)
    d = daemon()
    d.wait_ready()

    def invalid() -> list[dict[str, object]]:
        found = [x for x in log_lines(home) if x["event"] == "task.invalid"]
        return found if len(found) == len(BAD_FILES) else []

    found = wait_for(invalid, 20)
    assert d.stop() == 0
    assert isinstance(found, list)
    assert all("healthcheck_url" in str(x["error"]) or "env" in str(x["error"]) for x in found)
    assert_no_secret(home.log_file.read_text())
    assert_no_secret(d.output())
