"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

Playwright cannot download its own browsers here, so it launches /usr/bin/chromium (``.ci/run``
installs it with apt-get when missing). Without it the test is skipped and says why (``-rs``).
Screenshots for the README go to docs/ when they are missing or BASSI_UPDATE_SCREENSHOTS=1
(otherwise to the test's tmp folder, so a test run leaves the work tree clean).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from support import REPO, Start, runs, wait_for
from support.fake_claude import install
from support.web import WebProc

from bassi_schedd.config.paths import Home

CHROMIUM = os.environ.get("BASSI_CHROMIUM", "/usr/bin/chromium")


def _skip_reason() -> str | None:
    if shutil.which(CHROMIUM) is None:
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        return f"playwright is not installed ({e}); make setup installs the test extras"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


def screenshot_path(tmp_path: Path, name: str) -> Path:
    target = REPO / "docs" / name
    if os.environ.get("BASSI_UPDATE_SCREENSHOTS") == "1" or not target.exists():
        return target
    return tmp_path / name


def test_dashboard_in_a_real_browser(
    home: Home, write_task, daemon: Start, web: Callable[..., WebProc], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    gate = tmp_path / "gate"
    write_task(
        "backup",
        f"""
        description = "Nightly backup of ~/work"
        schedule = "daily 02:30"
        timezone = "Europe/Berlin"
        command = ["/bin/sh", "-c", "echo copying files; while [ ! -e {gate} ]; do sleep 0.05; \
done; echo backup done"]
        """,
    )
    write_task(
        "weekly-report",
        f"""
        description = "Weekly sales report"
        schedule = "0 9 * * MON"
        timezone = "UTC"
        prompt = "Summarise last week's sales"
        [budget]
        daily_usd = 0.01
        [agent]
        cli_path = "{install(tmp_path, "success")}"
        model = "claude-sonnet-4-5"
        """,
    )
    report = write_task(
        "inbox-digest",
        """
        description = "Digest of new mail"
        schedule = "every 2h"
        timezone = "UTC"
        command = ["/bin/echo", "digest"]
        env = { IMAP_PASSWORD = "never-shown" }
        """,
    )
    write_task(
        "slow",
        """
        description = "Yearly archive"
        schedule = "0 0 1 1 *"
        timezone = "UTC"
        command = ["/bin/sh", "-c", "echo started; exec sleep 600"]
        """,
    )
    d = daemon()
    d.wait_ready()
    w = web()
    assert w.post("/api/tasks/weekly-report/trigger").status == 202
    agent_run = wait_for(
        lambda: [r for r in runs(home, "weekly-report") if r["status"] == "success"], 60
    )[0]  # type: ignore[index]

    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            page.goto(f"{w.url}?token={w.token}")
            assert page.url == w.url  # the login link set the cookie and went to /
            rows = page.locator("table.tasks tbody tr")
            expect(rows).to_have_count(4)
            expect(page.locator("table.tasks")).to_contain_text("Weekly sales report")
            expect(page.locator("header .daemon")).to_contain_text("daemon running")
            # its one run cost $0.0123, over its daily cap of $0.01
            report_row = page.locator("tr", has_text="weekly-report")
            expect(report_row).to_contain_text("over budget")
            page.screenshot(path=str(screenshot_path(tmp_path, "dashboard-tasks.png")))

            # Run now -> the run appears under Live -> its page streams the output
            page.locator("tr", has_text="backup").get_by_role("button", name="Run now").click()
            live = page.locator("#live a.run-link", has_text="backup")
            expect(live).to_be_visible(timeout=30_000)
            live.click()
            output = page.locator("#output")
            expect(output).to_contain_text("copying files", timeout=30_000)
            expect(page.locator("#run-status")).to_contain_text("running")
            gate.touch()
            expect(output).to_contain_text("backup done", timeout=30_000)
            expect(page.locator("#run-status")).to_contain_text("success", timeout=30_000)

            # Stop on a run's page: it ends cancelled
            assert w.post("/api/tasks/slow/trigger").status == 202
            slow = wait_for(lambda: [r for r in runs(home, "slow") if r["status"] == "running"])
            page.goto(f"{w.url}runs/{slow[0]['run_id']}")  # type: ignore[index]
            expect(page.locator("#output")).to_contain_text("started", timeout=30_000)
            page.once("dialog", lambda dialog: dialog.accept())  # "Stop run ...?"
            page.get_by_role("button", name="Stop").click()
            expect(page.locator("#run-status")).to_contain_text("cancelled", timeout=30_000)

            # the transcript of the fake-CLI agent run, tool calls folded
            page.goto(f"{w.url}runs/{agent_run['run_id']}")
            conversation = page.locator(".conversation")
            expect(conversation).to_contain_text("All done: FAKE RESULT")
            tool = page.locator("details.tool-use").first
            expect(tool).to_contain_text("tool call: Bash")
            expect(tool.locator("pre")).not_to_be_visible()
            tool.locator("summary").click()
            expect(tool.locator("pre")).to_be_visible()
            expect(page.locator("dl")).to_contain_text("$0.0123")
            expect(page.locator("dl")).to_contain_text("120 in · 45 out")
            page.screenshot(
                path=str(screenshot_path(tmp_path, "dashboard-run.png")), full_page=True
            )

            # Pause from the task page: the file changes, the button becomes Resume
            before = report.read_text()
            page.goto(f"{w.url}tasks/inbox-digest")
            assert "never-shown" not in page.content()
            page.get_by_role("button", name="Run now").click()
            own = page.locator("#live li", has_text="inbox-digest")
            expect(own).to_contain_text("success", timeout=30_000)  # its run.start, then run.end
            page.get_by_role("button", name="Pause").click()
            expect(page.get_by_role("button", name="Resume")).to_be_visible(timeout=30_000)
            assert report.read_text() == before + "enabled = false\n"
        finally:
            browser.close()
    violations = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
    assert not violations, console
    assert not [m for m in console if m.startswith(("error", "pageerror"))], console
    assert d.stop() == 0
