"""Run folder inputs and the SDK options built from them (no agent is run here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.fake_claude import install

from bassi_schedd.agent.options import SETTING_SOURCES, build_options
from bassi_schedd.core.errors import UsageError


def task_dict(tmp_path: Path, **agent: Any) -> dict[str, Any]:
    return {"name": "demo", "cwd": str(tmp_path), "command": None, "agent": agent}


def test_options_carry_every_agent_setting(tmp_path: Path) -> None:
    cli = install(tmp_path)
    opts = build_options(
        task_dict(
            tmp_path,
            model="claude-x",
            max_turns=5,
            max_budget_usd=1.5,
            allowed_tools=["Read", "Bash(git *)"],
            permission_mode="acceptEdits",
            append_system_prompt="Write results to out/.",
            cli_path=str(cli),
        ),
        print,
    )
    assert opts.model == "claude-x"
    assert (opts.max_turns, opts.max_budget_usd) == (5, 1.5)
    assert opts.allowed_tools == ["Read", "Bash(git *)"]
    assert opts.permission_mode == "acceptEdits"
    # The Claude Code preset prompt stays; ours is appended; CLAUDE.md etc. load.
    assert opts.system_prompt == {
        "type": "preset",
        "preset": "claude_code",
        "append": "Write results to out/.",
    }
    assert opts.setting_sources == SETTING_SOURCES == ["user", "project", "local"]
    assert (opts.cwd, opts.cli_path) == (str(tmp_path), str(cli))
    assert opts.stderr is print


def test_options_default_to_the_cli_defaults(tmp_path: Path) -> None:
    opts = build_options(task_dict(tmp_path), print)
    assert opts.model is None and opts.max_turns is None and opts.max_budget_usd is None
    assert opts.allowed_tools == [] and opts.permission_mode is None and opts.cli_path is None
    assert opts.system_prompt == {"type": "preset", "preset": "claude_code"}


def test_cli_path_expands_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    install(tmp_path)
    opts = build_options(task_dict(tmp_path, cli_path="~/claude"), print)
    assert opts.cli_path == str(tmp_path / "claude")


@pytest.mark.parametrize(
    ("agent", "cwd", "needle"),
    [
        ({"max_turns": "5"}, None, "agent.max_turns has the wrong type (str)"),
        ({"max_turns": True}, None, "agent.max_turns has the wrong type (bool)"),
        ({"allowed_tools": "Read"}, None, "allowed_tools must be a list of strings"),
        ({"cli_path": "/nonexistent/claude"}, None, "/nonexistent/claude is not an executable"),
        ({"cli_path": "{tmp}/plain.txt"}, None, "plain.txt is not an executable"),
        ({}, "{tmp}/missing", "missing is not a folder"),
    ],
)
def test_bad_options_are_usage_errors(
    tmp_path: Path, agent: dict[str, Any], cwd: str | None, needle: str
) -> None:
    (tmp_path / "plain.txt").write_text("not a program")
    agent = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in agent.items()}
    task = task_dict(tmp_path, **agent)
    if cwd:
        task["cwd"] = cwd.format(tmp=tmp_path)
    with pytest.raises(UsageError) as err:
        build_options(task, print)
    assert needle in str(err.value)


def test_agent_must_be_an_object(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="'agent' must be an object"):
        build_options({"cwd": str(tmp_path), "agent": ["x"]}, print)
