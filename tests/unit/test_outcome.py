"""The exit-code rules of SPEC 6, one fact pattern at a time (shapes recorded from the real CLI)."""

from __future__ import annotations

import signal

import pytest

from bassi_schedd.core.outcome import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TEMPFAIL,
    LOGIN_HINT,
    RunFacts,
    classify,
)


def api_error(
    assistant_error: str | None, status: int | None, text: str, subtype: str = "success"
) -> RunFacts:
    """An API failure as the CLI ends it: synthetic assistant error, then an error result."""
    return RunFacts(
        subtype=subtype,
        is_error=True,
        api_error_status=status,
        assistant_error=assistant_error,
        texts=[text, text],
    )


def test_success_is_exit_0() -> None:
    out = classify(RunFacts(subtype="success", is_error=False))
    assert (out.exit_code, out.status, out.kind, out.error) == (EXIT_OK, "success", None, None)


def test_success_wins_over_earlier_retried_errors() -> None:
    facts = RunFacts(subtype="success", is_error=False, assistant_error="rate_limit")
    assert classify(facts).exit_code == EXIT_OK


@pytest.mark.parametrize(
    ("facts", "code", "kind", "needle"),
    [
        (
            api_error("rate_limit", 429, "API Error: Request rejected (429) · rate_limit_error"),
            EXIT_TEMPFAIL,
            "rate_limit",
            "rate limited",
        ),
        (
            api_error("server_error", 529, "API Error: 529 overloaded_error."),
            EXIT_TEMPFAIL,
            "overloaded",
            "overloaded",
        ),
        (
            api_error("server_error", 500, "API Error: 500 api_error."),
            EXIT_TEMPFAIL,
            "server_error",
            "API failed",
        ),
        (
            api_error("server_error", None, "API Error: Connection refused (ECONNREFUSED)"),
            EXIT_TEMPFAIL,
            "network",
            "ECONNREFUSED",
        ),
        (
            api_error("unknown", None, "API Error: getaddrinfo ENOTFOUND api.anthropic.com"),
            EXIT_TEMPFAIL,
            "network",
            "ENOTFOUND",
        ),
        (api_error("unknown", 503, "Unavailable"), EXIT_TEMPFAIL, "overloaded", "Unavailable"),
        (api_error("unknown", 408, "request timeout"), EXIT_TEMPFAIL, "network", "timeout"),
        (api_error("unknown", None, "Request timed out."), EXIT_TEMPFAIL, "network", "timed out"),
        (
            api_error("authentication_failed", None, "Not logged in · Please run /login"),
            EXIT_FAILED,
            "not_logged_in",
            "claude /login",
        ),
        (
            api_error("authentication_failed", 401, "Failed to authenticate. API Error: 401"),
            EXIT_FAILED,
            "authentication",
            "ANTHROPIC_API_KEY",
        ),
        (api_error(None, 403, "forbidden"), EXIT_FAILED, "authentication", "forbidden"),
        (
            api_error("billing_error", 400, "Credit balance is too low"),
            EXIT_FAILED,
            "billing",
            "Credit balance",
        ),
        (api_error("unknown", 402, "API Error: 402"), EXIT_FAILED, "billing", "402"),
        (
            api_error("unknown", 400, "API Error: 400 invalid_request_error"),
            EXIT_FAILED,
            "invalid_request",
            "rejected the request",
        ),
        (
            api_error("invalid_request", None, "prompt is too long"),
            EXIT_FAILED,
            "invalid_request",
            "too long",
        ),
        (
            api_error(None, None, "Reached maximum number of turns (3)", "error_max_turns"),
            EXIT_FAILED,
            "max_turns",
            "max_turns",
        ),
        (
            api_error(None, None, "Reached maximum budget ($0.5)", "error_max_budget_usd"),
            EXIT_FAILED,
            "max_budget",
            "$0.5",
        ),
        (
            api_error(None, None, "tool crashed", "error_during_execution"),
            EXIT_FAILED,
            "agent_error",
            "tool crashed",
        ),
        (
            api_error(None, None, "Claude usage limit reached"),
            EXIT_TEMPFAIL,
            "rate_limit",
            "usage limit",
        ),
        (api_error(None, None, "Invalid API key"), EXIT_FAILED, "authentication", "Invalid"),
        (api_error(None, None, ""), EXIT_FAILED, "agent_error", "success"),
    ],
)
def test_error_results(facts: RunFacts, code: int, kind: str, needle: str) -> None:
    out = classify(facts)
    assert (out.exit_code, out.kind) == (code, kind), out
    assert out.status == ("temporary_failure" if code == EXIT_TEMPFAIL else "failed")
    assert out.error is not None and needle in out.error
    assert "\n" not in out.error


def test_repeated_error_text_is_said_once() -> None:
    out = classify(api_error("rate_limit", 429, "API Error: 429"))
    assert out.error is not None and out.error.count("API Error: 429") == 1


def test_login_errors_say_how_to_log_in() -> None:
    out = classify(api_error("authentication_failed", None, "Not logged in · Please run /login"))
    assert out.error is not None and LOGIN_HINT in out.error
    for needle in ("claude /login", "claude setup-token", "ANTHROPIC_API_KEY"):
        assert needle in out.error


def test_rejected_rate_limit_event_gives_reset_time() -> None:
    facts = api_error(None, None, "You've hit your limit")
    facts.rate_limit_resets_at = 1893456000
    out = classify(facts)
    assert out.exit_code == EXIT_TEMPFAIL
    assert out.error is not None and "resets at 2030-01-01T00:00:00+00:00" in out.error


@pytest.mark.parametrize(
    ("kind", "text", "stderr", "code", "out_kind"),
    [
        ("cli_not_found", "Claude Code not found at: /x", [], EXIT_FAILED, "cli_not_found"),
        ("protocol", "Failed to decode JSON: {oops", [], EXIT_FAILED, "protocol"),
        ("process", "Command failed with exit code 3", ["boom"], EXIT_FAILED, "cli_failed"),
        ("other", "Control request timeout: initialize", [], EXIT_FAILED, "cli_failed"),
        ("process", "Command failed", ["Error: ECONNRESET"], EXIT_TEMPFAIL, "network"),
        ("process", "Command failed", ["Not logged in"], EXIT_FAILED, "not_logged_in"),
        (None, "", [], EXIT_FAILED, "no_result"),
    ],
)
def test_runs_without_a_result(
    kind: str | None, text: str, stderr: list[str], code: int, out_kind: str
) -> None:
    out = classify(RunFacts(exception_kind=kind, exception_text=text, stderr_tail=stderr))
    assert (out.exit_code, out.kind) == (code, out_kind), out


def test_crash_names_the_last_stderr_line() -> None:
    facts = RunFacts(
        exception_kind="process",
        exception_text="Command failed with exit code 3\nError output: see stderr",
        stderr_tail=["first", "fatal: disk full"],
    )
    out = classify(facts)
    assert out.error == "the claude CLI failed: Command failed with exit code 3 (fatal: disk full)"


def test_signal_and_timeout_win_over_everything() -> None:
    out = classify(RunFacts(subtype="success", is_error=False, signal=signal.SIGTERM))
    assert (out.exit_code, out.status, out.error) == (143, "interrupted", "interrupted by SIGTERM")
    out = classify(RunFacts(timed_out_s=90.0, assistant_error="rate_limit"))
    assert (out.exit_code, out.status, out.error) == (124, "timeout", "timed out after 90s")


def test_long_error_text_is_cut_to_one_line() -> None:
    out = classify(api_error(None, None, "x " * 1000 + "\nsecond line", "error_during_execution"))
    assert out.error is not None and len(out.error) < 400 and "\n" not in out.error
