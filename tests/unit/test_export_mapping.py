"""Export mapping, in process: manifests (strict schema validation plus our own checks), the
field mapping of SPEC 12, warnings per unmappable key, unit file contents."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.k8s import parse, problems, schema_errors

from bassi_schedd.config.paths import Home
from bassi_schedd.core.errors import UserError
from bassi_schedd.export import collect
from bassi_schedd.export.kubernetes import MAX_NAME, cronjob_name

WriteTask = Callable[[str, str], Path]
PLAIN = 'schedule = "0 9 * * *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n'


def _manifest(home: Home, *names: str, ns: str | None = None) -> list[dict[str, Any]]:
    out = collect.export_kubernetes(home, list(names), "registry.example/bassi:1", ns)
    return parse(out.files["manifest"])


def _jobs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["annotations"]["bassi-schedd/task"]: d for d in docs[1:]}


def test_every_manifest_passes_strict_schema_validation_and_our_checks(
    home: Home, write_task: WriteTask
) -> None:
    (home.tasks_dir / "prompts").mkdir()
    (home.tasks_dir / "prompts" / "weekly report.md").write_text("Summarise {date}.\n")
    home.config_file.write_text('timezone = "Asia/Tokyo"\n')
    home.config_file.chmod(0o600)
    write_task(
        "weekly",
        """
        schedule = "0 9 * * MON"
        timezone = "Europe/Berlin"
        prompt_file = "prompts/weekly report.md"
        timeout = "30m"
        retries = 2
        """,
    )
    variants = {
        "skip_replace": 'on_missed = "skip"\noverlap = "replace"\n',
        "latest-deadline-5s": 'missed_deadline = "5s"\noverlap = "allow"\n',
        "all-queue": 'on_missed = "all"\noverlap = "queue"\nenabled = false\n',
        "every": 'schedule = "every 15m"\n',
        "x" * 64: "",
        "trailing_": "",
    }
    for name, extra in variants.items():
        body = extra + PLAIN if "schedule" not in extra else extra + PLAIN.split("\n", 1)[1]
        write_task(name, body)
    docs = _manifest(home, ns="agents")
    assert [d["kind"] for d in docs] == ["ConfigMap"] + ["CronJob"] * 7
    for doc in docs:
        assert schema_errors(doc) == []
        assert doc["metadata"]["namespace"] == "agents"
    assert problems(docs) == []
    assert docs[0]["data"]["_schedd.toml"] == 'timezone = "Asia/Tokyo"\n'
    assert _jobs(docs)["every"]["spec"]["timeZone"] == "Etc/UTC"
    for job in docs[1:]:  # every pod gets schedd.toml (pass_env, defaults) as at home
        items = [i["key"] for i in _pod(job)["volumes"][1]["configMap"]["items"]]
        assert items[-1] == "_schedd.toml"
        assert "/schedd.toml\n" in _pod(job)["initContainers"][0]["command"][2] + "\n"


def test_a_prompt_file_cannot_take_the_settings_key(home: Home, write_task: WriteTask) -> None:
    home.config_file.write_text("max_concurrent = 2\n")
    home.config_file.chmod(0o600)
    (home.tasks_dir / "_schedd.toml").write_text("a prompt with an odd name")
    write_task("t", 'schedule = "@daily"\nprompt_file = "_schedd.toml"\n')
    with pytest.raises(UserError, match=re.escape("ConfigMap's '_schedd.toml'")):
        collect.export_kubernetes(home, [], "img", None)


def test_our_checks_catch_what_the_schemas_do_not(home: Home, write_task: WriteTask) -> None:
    write_task("t", PLAIN)
    docs = _manifest(home)
    breakages: list[tuple[Callable[[dict[str, Any]], None], str]] = [
        (lambda j: j["spec"].update(concurrencyPolicy="Sometimes"), "concurrencyPolicy"),
        (lambda j: j["spec"].update(timeZone="Mars/Olympus"), "timeZone"),
        (lambda j: j["spec"].update(schedule="0 9 * * MON"), "not plain 5-field cron"),
        (lambda j: j["spec"].update(schedule="0 25 * * *"), "hour must be"),
        (lambda j: j["spec"].update(startingDeadlineSeconds=5), "startingDeadlineSeconds"),
        (lambda j: j["metadata"].update(name="bassi-" + "t" * 47), "at most 52"),
        (lambda j: _pod(j)["volumes"][1]["configMap"]["items"][0].update(key="nope"), "nope"),
    ]
    for brk, message in breakages:
        broken = copy.deepcopy(docs)
        brk(broken[1])
        found = problems(broken)
        assert any(message in p for p in found), (message, found)
        assert schema_errors(broken[1]) == []  # what the schema alone lets through
    unknown = copy.deepcopy(docs[1])
    unknown["spec"]["timezone"] = "UTC"  # a typo of timeZone: only strict validation sees it
    assert schema_errors(unknown)


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def test_field_mapping(home: Home, write_task: WriteTask) -> None:
    write_task(
        "a",
        'schedule = "weekdays 09:30"\ntimezone = "Europe/Berlin"\ntimeout = "90s"\n'
        'retries = 3\noverlap = "replace"\non_missed = "skip"\nprompt = "hi"\n',
    )
    write_task("b", 'missed_deadline = "2h"\noverlap = "allow"\nenabled = false\n' + PLAIN)
    write_task("c", 'overlap = "queue"\non_missed = "all"\n' + PLAIN)
    docs = _manifest(home)
    jobs = _jobs(docs)
    a, b, c = jobs["a"]["spec"], jobs["b"]["spec"], jobs["c"]["spec"]
    assert (a["schedule"], a["timeZone"]) == ("30 9 * * 1-5", "Europe/Berlin")
    assert (a["suspend"], b["suspend"]) == (False, True)
    assert [j["concurrencyPolicy"] for j in (a, b, c)] == ["Replace", "Allow", "Forbid"]
    assert a["startingDeadlineSeconds"] == 90 and b["startingDeadlineSeconds"] == 7200
    assert "startingDeadlineSeconds" not in c  # latest/all without missed_deadline: unset
    job = a["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] == 90 + 60 and job["backoffLimit"] == 3
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["command"] == ["bassi-schedd", "execute", "a"]
    assert container["envFrom"] == [{"secretRef": {"name": "bassi-secrets"}}]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["BASSI_HOME"] == "/home/bassi/.bassi" and env["TZ"] == "Europe/Berlin"
    assert container["volumeMounts"][0]["mountPath"] == "/home/bassi"
    labels = jobs["a"]["metadata"]["labels"]
    assert labels == {"app.kubernetes.io/name": "bassi-schedd", "bassi-schedd/task": "a"}
    assert job["template"]["metadata"]["labels"] == labels
    assert docs[0]["data"]["a.toml"] == (home.tasks_dir / "a.toml").read_text()


def test_cronjob_names_fit_and_stay_unique() -> None:
    assert cronjob_name("weekly-report") == "bassi-weekly-report"
    long = ["a" * 64, "a" * 63 + "b", "a_b", "a-b", "a_", "report_2026"]
    names = [cronjob_name(n) for n in long]
    assert len(set(names)) == len(names)
    assert all(len(n) <= MAX_NAME and n[-1].isalnum() and "_" not in n for n in names)


UNMAPPABLE_K8S = [
    ('overlap = "queue"', "overlap"),
    ('on_missed = "all"', "on_missed"),
    ('retries = 2\nretry_delay = "5m"', "retry_delay"),
    ('jitter = "10m"', "jitter"),
    ('notify = { on = ["failure"], desktop = true }', "notify"),
    ('healthcheck_url = "https://hc.example/ping/abc"', "healthcheck_url"),
    ('agent = { cli_path = "/opt/claude" }', "agent.cli_path"),
    ('env = { REPORT_TOKEN = "not in a ConfigMap, please" }', "env"),
]
UNMAPPABLE_SYSTEMD = [
    ('overlap = "queue"', "overlap"),
    ('on_missed = "all"', "on_missed"),
    ('missed_deadline = "2h"', "missed_deadline"),
    ("enabled = false", "enabled"),
    ('notify = { on = ["failure"], desktop = true }', "notify"),
    ('healthcheck_url = "https://hc.example/ping/abc"', "healthcheck_url"),
]


@pytest.mark.parametrize(("line", "key"), UNMAPPABLE_K8S)
def test_each_unmappable_key_warns_once_for_kubernetes(
    home: Home, write_task: WriteTask, line: str, key: str
) -> None:
    write_task("t", line + "\n" + PLAIN)
    write_task("plain", PLAIN)
    out = collect.export_kubernetes(home, [], "img", None)
    assert [(n.task, n.key) for n in out.notes] == [("t", key)]


@pytest.mark.parametrize(("line", "key"), UNMAPPABLE_SYSTEMD)
def test_each_unmappable_key_warns_once_for_systemd(
    home: Home, write_task: WriteTask, line: str, key: str
) -> None:
    write_task("t", line + "\n" + PLAIN)
    write_task("plain", PLAIN)
    out = collect.export_systemd(home, [])
    assert [(n.task, n.key) for n in out.notes] == [("t", key)]


def test_retries_warn_for_systemd_with_their_delay(home: Home, write_task: WriteTask) -> None:
    write_task("t", "retries = 1\n" + PLAIN)
    keys = [n.key for n in collect.export_systemd(home, []).notes]
    assert keys == ["retries", "retry_delay"]


def test_a_task_that_cannot_be_exported_does_not_stop_the_others(
    home: Home, write_task: WriteTask, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.md"
    outside.write_text("hi")
    outside.chmod(0o600)
    write_task("outside", f'schedule = "@daily"\nprompt_file = "{outside}"\n')
    write_task("bad-cron", 'schedule = "every 7m"\ncommand = ["/bin/true"]\n')
    write_task("broken", 'schedule = "every"\n')
    write_task("fine", PLAIN)
    out = collect.export_kubernetes(home, [], "img", None)
    assert out.exported == ["fine"]
    assert sorted(p.task for p in out.problems) == ["bad-cron", "broken", "outside"]
    assert [d["kind"] for d in parse(out.files["manifest"])] == ["ConfigMap", "CronJob"]
    assert "outside the tasks folder" in next(p.text for p in out.problems if p.task == "outside")
    systemd = collect.export_systemd(home, [])
    assert sorted(systemd.exported) == ["fine", "outside"]
    assert sorted(p.task for p in systemd.problems) == ["bad-cron", "broken"]


def test_the_configmap_size_limit_is_an_error_not_a_failed_apply(
    home: Home, write_task: WriteTask
) -> None:
    big = "x" * 900_000
    for name in ("one", "two"):
        write_task(name, f'schedule = "@daily"\nprompt = "{big}"\n')
    with pytest.raises(UserError, match="over Kubernetes' limit of 1 MiB"):
        collect.export_kubernetes(home, [], "img", None)
    assert collect.export_kubernetes(home, ["one"], "img", None).exported == ["one"]


def test_unit_files(home: Home, write_task: WriteTask) -> None:
    write_task(
        "t",
        'description = "100% done\\\\"\nschedule = "@hourly"\ntimezone = "Asia/Tokyo"\n'
        'timeout = "10m"\non_missed = "skip"\njitter = "90s"\ncommand = ["/bin/true"]\n',
    )
    write_task("u", PLAIN)
    files = collect.export_systemd(home, []).files
    assert sorted(files) == ["bassi-t.service", "bassi-t.timer", "bassi-u.service", "bassi-u.timer"]
    service, timer = files["bassi-t.service"], files["bassi-t.timer"]
    assert "Description=bassi-schedd task t: 100%% done\n" in service
    assert "Type=oneshot\n" in service and "TimeoutStartSec=660\n" in service
    assert '" "execute" "t"\n' in service and f'"BASSI_HOME={home.root}"' in service
    assert "OnCalendar=*-*-* *:00:00 Asia/Tokyo\n" in timer
    assert "Persistent=false\n" in timer and "AccuracySec=1s\n" in timer
    assert "RandomizedDelaySec=90\nFixedRandomDelay=true\n" in timer
    assert "Persistent=true\n" in files["bassi-u.timer"]
    assert "RandomizedDelaySec" not in files["bassi-u.timer"]


def test_a_task_named_like_the_daemon_is_refused(home: Home, write_task: WriteTask) -> None:
    write_task("schedd", PLAIN)
    out = collect.export_systemd(home, [])
    assert out.files == {} and "the daemon's own" in out.problems[0].text


def test_unit_values_survive_odd_paths(tmp_path: Path) -> None:
    """Quotes, %, $, backslashes and spaces in BASSI_HOME and PATH come back out of the unit
    exactly, read as systemd reads them."""
    from bassi_schedd.ops.install import systemd_words

    weird = Home(tmp_path / 'a "we%ird" $HOME\\dir')
    weird.ensure()
    task = weird.tasks_dir / "t.toml"
    task.write_text(PLAIN)
    task.chmod(0o600)
    service = collect.export_systemd(weird, []).files["bassi-t.service"]
    values = dict(line.split("=", 1) for line in service.splitlines() if "=" in line[:20])
    env = dict(w.split("=", 1) for w in systemd_words(values["Environment"]))
    assert env["BASSI_HOME"] == str(weird.root)
    words = systemd_words(values["ExecStart"].replace("$$", "$"))
    assert words[-2:] == ["execute", "t"] and Path(words[0]).name == "bassi-schedd"
