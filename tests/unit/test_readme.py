"""The README stays true: its annotated task file loads, its command table matches the CLI."""

from __future__ import annotations

import re
from pathlib import Path

from support import REPO

from bassi_schedd.cli.main import COMMANDS
from bassi_schedd.config.loader import load_task_file
from bassi_schedd.config.paths import Home
from bassi_schedd.config.settings import load_config

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_annotated_task_file_loads(home: Home, tmp_path: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", README, re.S)
    assert block is not None
    text = block.group(1).replace('cwd = "~/work"', f'cwd = "{tmp_path}"')
    path = home.tasks_dir / "weekly.toml"
    path.write_text(text)
    path.chmod(0o600)
    spec = load_task_file(path, load_config(home))
    assert spec.timezone == "Europe/Berlin" and spec.on_missed == "latest"
    assert spec.agent.max_turns == 30 and spec.timeout_s == 1800


def test_every_command_is_documented_and_exists() -> None:
    section = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    table = re.findall(r"^\| `([a-z]+)", section, re.M)
    documented = set(table) | set(re.findall(r"^\| `[a-z]+[^|]*` / `([a-z]+)", section, re.M))
    assert documented == set(COMMANDS)


def test_the_limits_table_matches_the_code() -> None:
    from bassi_schedd.cli.history import MAX_N
    from bassi_schedd.cli.tasks import MAX_NEXT
    from bassi_schedd.core import limits
    from bassi_schedd.core.schedule import AT_YEARS

    section = README.split("### Limits", 1)[1].split("\n## ", 1)[0]
    rows = {
        (cells[0], cells[1]): cells[2:4]
        for cells in (
            [c.strip() for c in line.strip("|").split("|")]
            for line in section.splitlines()
            if line.startswith("| `")
        )
    }
    for limit in limits.ALL:
        low = f"> {limit.show(limit.low)}" if limit.low_exclusive else limit.show(limit.low)
        assert rows.pop((f"`{limit.key}`", limit.where)) == [low, limit.show(limit.high)], limit
    assert rows.pop(("`at`", "task")) == [
        f"{AT_YEARS[0]}-01-01T00:00",
        f"{AT_YEARS[1]}-12-31T23:59",
    ]
    assert rows.pop(("`every N`", "task schedule")) == ["1m", "3650d"]
    assert rows.pop(("`-n`", "next")) == ["1", str(MAX_NEXT)]
    assert rows.pop(("`-n`", "history")) == ["1", str(MAX_N)]
    assert rows == {}
