"""`bassi-schedd export` as a user runs it: output, warnings and errors on stderr, exit codes;
and the exported pod's commands, played here as kubelet would, really run the task."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support import BIN_DIR, CliResult
from support.k8s import parse, problems, schema_errors

from bassi_schedd.config.paths import Home

Cli = Callable[..., CliResult]
WriteTask = Callable[[str, str], Path]


def _tasks(home: Home, write_task: WriteTask) -> None:
    (home.tasks_dir / "prompts").mkdir(mode=0o700)
    prompt = home.tasks_dir / "prompts" / "report.md"
    prompt.write_text('Summarise {date}; keep {"json": true} as is.\n')
    prompt.chmod(0o600)
    write_task(
        "report",
        'schedule = "0 9 * * MON"\ntimezone = "Europe/Berlin"\nprompt_file = "prompts/report.md"\n',
    )
    write_task(
        "backup",
        'schedule = "@daily"\ncommand = ["/bin/sh", "-c", "echo backed up with $BACKUP_TOKEN"]\n',
    )
    write_task("queued", 'schedule = "*/5 * * * *"\noverlap = "queue"\ncommand = ["/bin/true"]\n')
    write_task("odd", 'schedule = "every 90m"\ncommand = ["/bin/true"]\n')


def test_export_kubernetes(home: Home, write_task: WriteTask, cli: Cli, tmp_path: Path) -> None:
    _tasks(home, write_task)
    r = cli("export", "kubernetes", "--image", "registry.example/bassi:1", "--namespace", "agents")
    assert r.returncode == 1  # one task could not be exported; the others are
    assert r.stderr.splitlines() == [
        "bassi-schedd: warning: task 'queued': key 'overlap': 'queue' becomes "
        "concurrencyPolicy Forbid: a due run is skipped",
        "bassi-schedd: error: task 'odd': schedule 'every 90m' cannot be translated exactly: "
        "'every 90m' fires at different minutes in different hours, which one cron line "
        "cannot say; use an interval that divides 60m, or whole hours that divide 24h",
        "bassi-schedd: exported 3 of 4 tasks",
    ]
    docs = parse(r.stdout)
    assert [d["metadata"]["name"] for d in docs] == [
        "bassi-tasks",
        "bassi-backup",
        "bassi-queued",
        "bassi-report",
    ]
    for doc in docs:
        assert schema_errors(doc) == []
    assert problems(docs) == []
    (prompt_key,) = [k for k in docs[0]["data"] if k.startswith("prompts_report.md.")]
    assert docs[0]["data"][prompt_key].startswith("Summarise {date}")

    target = tmp_path / "bassi.yaml"
    r2 = cli("export", "kubernetes", "--image", "registry.example/bassi:1", "-o", str(target))
    assert r2.returncode == 1 and r2.stdout == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [d["kind"] for d in parse(target.read_text())] == ["ConfigMap"] + ["CronJob"] * 3

    r3 = cli("export", "kubernetes", "backup", "--image", "img")
    assert (r3.returncode, r3.stderr) == (0, "")
    assert [d["metadata"]["name"] for d in parse(r3.stdout)] == ["bassi-tasks", "bassi-backup"]


def test_export_systemd_to_stdout(home: Home, write_task: WriteTask, cli: Cli) -> None:
    _tasks(home, write_task)
    r = cli("export", "systemd", "backup", "odd")
    assert (r.returncode, r.stderr) == (0, "")
    headers = [line for line in r.stdout.splitlines() if line.startswith("### ")]
    assert headers == [
        "### bassi-backup.service",
        "### bassi-backup.timer",
        "### bassi-odd.service",
        "### bassi-odd.timer",
    ]
    assert "OnCalendar=*-*-* 01,04,07,10,13,16,19,22:30:00 UTC" in r.stdout


def test_usage_errors(home: Home, write_task: WriteTask, cli: Cli) -> None:
    write_task("t", 'schedule = "@daily"\ncommand = ["/bin/true"]\n')
    cases = [
        (["export"], "required: TARGET"),
        (["export", "kubernetes"], "required: --image"),
        (["export", "kubernetes", "--image", "a b"], "not an image reference"),
        (["export", "kubernetes", "--image", "i", "--namespace", "Bad_NS"], "namespace name"),
        (["export", "kubernetes", "nope", "--image", "i"], "no task named 'nope'"),
        (["export", "systemd", "nope"], "no task named 'nope'"),
    ]
    for args, message in cases:
        r = cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert r.stdout == ""


def test_the_exported_pod_runs_the_task(
    home: Home, write_task: WriteTask, cli: Cli, tmp_path: Path
) -> None:
    """The init container's script and the container's command, with the pod's environment and
    the ConfigMap laid out as kubelet does (symbolic links into ``..data``), run the task as a
    user other than the files' owner would have to: by copying them first."""
    _tasks(home, write_task)
    home.config_file.write_text('pass_env = ["BACKUP_TOKEN"]\n')  # goes along with the tasks
    home.config_file.chmod(0o600)
    r = cli("export", "kubernetes", "--image", "img")
    docs = parse(r.stdout)
    data = docs[0]["data"]
    pod = next(d for d in docs if d["metadata"]["name"] == "bassi-backup")["spec"]["jobTemplate"][
        "spec"
    ]["template"]["spec"]
    root = tmp_path / "pod"
    volume = next(v for v in pod["volumes"] if "configMap" in v)["configMap"]
    mount = root / "bassi-tasks"
    _lay_out_configmap(mount, {i["path"]: data[i["key"]] for i in volume["items"]})

    def in_pod(text: str) -> str:
        return text.replace("/bassi-tasks", str(mount)).replace("/home/bassi", str(root / "home"))

    (root / "home").mkdir()
    (init,) = pod["initContainers"]
    subprocess.run([init["command"][0], init["command"][1], in_pod(init["command"][2])], check=True)
    (container,) = pod["containers"]
    env = {e["name"]: in_pod(e["value"]) for e in container["env"]}
    env["PATH"] = f"{BIN_DIR}:/usr/bin:/bin"
    env["BACKUP_TOKEN"] = "s3cret"  # what envFrom the Secret gives the container
    p = subprocess.run(container["command"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "backed up with s3cret" in p.stdout  # pass_env from the exported schedd.toml
    bassi_home = Path(env["BASSI_HOME"])
    tasks = bassi_home / "tasks"
    assert sorted(os.listdir(tasks)) == ["backup.toml"]
    assert (bassi_home / "schedd.toml").read_text() == 'pass_env = ["BACKUP_TOKEN"]\n'
    assert stat.S_IMODE(tasks.stat().st_mode) == 0o700
    (run_dir,) = (bassi_home / "runs" / "backup").iterdir()
    assert "backed up with s3cret" in (run_dir / "output.log").read_text()


def _lay_out_configmap(mount: Path, files: dict[str, Any]) -> None:
    """Files under ``..<timestamp>/``, ``..data`` pointing there, top-level links into it."""
    real = mount / "..2026_12_06_08_00_00.000000001"
    for path, text in files.items():
        (real / path).parent.mkdir(parents=True, exist_ok=True)
        (real / path).write_text(text)
        (real / path).chmod(0o444)
    (mount / "..data").symlink_to(real.name)
    for top in {p.split("/")[0] for p in files}:
        (mount / top).symlink_to(f"..data/{top}")


def test_errors_that_stop_the_whole_export(
    home: Home, write_task: WriteTask, cli: Cli, tmp_path: Path
) -> None:
    results = [(cli("export", "systemd"), 1, "no task to export")]
    write_task("t", 'schedule = "@daily"\ncommand = ["/bin/true"]\n')
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    results.append((cli("export", "systemd", "-o", str(a_file)), 2, "not a folder"))
    missing = str(tmp_path / "no" / "such.yaml")
    results.append((cli("export", "kubernetes", "--image", "i", "-o", missing), 1, "No such file"))
    home.tasks_dir.chmod(0o777)
    results.append((cli("export", "kubernetes", "--image", "i"), 1, "world-writable"))
    for r, code, message in results:
        assert (r.returncode, r.stdout) == (code, ""), r
        assert message in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
