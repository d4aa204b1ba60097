"""``python -m bassi_schedd.ops.demo DIR``: a demo BASSI_HOME for ``make run`` (no API key needed).

It holds a script task that fires every minute, so a fresh user sees a run within a minute, and
an agent task left disabled that shows the prompt form.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bassi_schedd.config.paths import Home

HELLO = """\
# A script task: runs a command instead of the agent, so it needs no API key.
description = "Say hello every minute (demo)"
schedule = "* * * * *"
command = ["/bin/sh", "-c", "echo hello from $BASSI_TASK for $BASSI_SCHEDULED_FOR; date"]
timeout = "30s"
"""

REPORT = """\
# An agent task: the prompt goes to Claude through claude-agent-sdk.
# Disabled in the demo because it needs a Claude login or ANTHROPIC_API_KEY.
description = "Weekly sales report"
schedule = "monday 09:00"
enabled = false
prompt = \"\"\"
Summarise last week's sales up to {date}; last run was {last_run_date}.
\"\"\"
timeout = "30m"
on_missed = "latest"

[agent]
max_turns = 10
max_budget_usd = 0.5
"""


def make_demo_home(root: Path) -> Home:
    """Create (or refresh) the demo tasks under ``root``; history and logs are kept."""
    home = Home(root.absolute())
    home.ensure()
    for name, body in (("hello", HELLO), ("weekly-report", REPORT)):
        path = home.tasks_dir / f"{name}.toml"
        if not path.exists() or path.read_text(encoding="utf-8") != body:
            path.write_text(body, encoding="utf-8")
        path.chmod(0o600)
    return home


if __name__ == "__main__":
    home = make_demo_home(Path(sys.argv[1] if len(sys.argv) > 1 else ".demo-home"))
    print(f"demo home: {home.root}  (tasks: hello every minute, weekly-report disabled)")
    print("the first run starts at the next minute boundary; stop with Ctrl-C")
