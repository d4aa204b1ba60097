"""How an agent run ended: the facts the executor saw, and the exit code they mean (SPEC 6).

Pure and SDK-free so that every rule can be tested on its own. The error shapes come from the
bundled claude CLI (2.1.x): an API failure ends with a synthetic assistant message whose
``error`` is one of ``rate_limit server_error authentication_failed billing_error
invalid_request unknown``, followed by a ``result`` with ``is_error`` and, for HTTP failures,
``api_error_status``; a refused connection is ``server_error`` with no status. Limits end with
result subtypes ``error_max_turns`` / ``error_max_budget_usd``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TEMPFAIL = 75  # EX_TEMPFAIL from sysexits.h: the daemon retries it

LOGIN_HINT = (
    "log in with 'claude /login' (or create a long-lived token with 'claude setup-token' and "
    "set CLAUDE_CODE_OAUTH_TOKEN), or set ANTHROPIC_API_KEY; the daemon passes both to runs "
    "through pass_env"
)

_NOT_LOGGED_IN = re.compile(r"not logged in|please run /login", re.I)
_AUTH = re.compile(r"invalid (x-)?api.?key|authenticat|oauth token|\b401\b", re.I)
_RATE = re.compile(r"rate.?limit|\b429\b|too many requests|usage limit|hit your limit", re.I)
_OVERLOAD = re.compile(r"overloaded|\b529\b|\b503\b", re.I)
_NETWORK = re.compile(
    r"ECONNREFUSED|ECONNRESET|ENOTFOUND|ETIMEDOUT|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|EPIPE|"
    r"socket hang up|connection (error|refused|reset)|network|fetch failed",
    re.I,
)
# Only for API errors: a CLI that times out talking to us (initialize) is not a network failure.
_TIMEOUT = re.compile(r"timed? ?out", re.I)


@dataclass
class RunFacts:
    """What the executor saw of one run (filled in as messages arrive)."""

    subtype: str | None = None  # of the result message, None when there was none
    is_error: bool | None = None
    api_error_status: int | None = None
    assistant_error: str | None = None  # AssistantMessage.error of the last failing turn
    texts: list[str] = field(default_factory=list)  # error prose: result, errors[], assistant
    rate_limit_resets_at: int | None = None  # a rejected RateLimitEvent (0: time unknown)
    exception_kind: str | None = None  # cli_not_found protocol process connection other
    exception_text: str = ""
    stderr_tail: list[str] = field(default_factory=list)
    signal: int | None = None
    timed_out_s: float | None = None


@dataclass(frozen=True)
class Outcome:
    """The verdict: exit code, result.json ``status``, a machine-readable kind, one sentence."""

    exit_code: int
    status: str
    kind: str | None = None
    error: str | None = None


def _failed(kind: str, error: str) -> Outcome:
    return Outcome(EXIT_FAILED, "failed", kind, error)


def _temporary(kind: str, error: str) -> Outcome:
    return Outcome(EXIT_TEMPFAIL, "temporary_failure", kind, error)


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def classify(f: RunFacts) -> Outcome:
    """The exit code and error sentence for a finished (or stopped) run."""
    if f.signal is not None:
        name = _signal_name(f.signal)
        return Outcome(128 + f.signal, "interrupted", "interrupted", f"interrupted by {name}")
    if f.timed_out_s is not None:
        return Outcome(124, "timeout", "timeout", f"timed out after {f.timed_out_s:g}s")
    if f.subtype is not None and not f.is_error:
        return Outcome(EXIT_OK, "success")
    detail = _one_line("; ".join(dict.fromkeys(t.strip() for t in f.texts if t.strip())))
    if f.subtype == "error_max_turns":
        return _failed("max_turns", f"the agent reached max_turns: {detail or f.subtype}")
    if f.subtype == "error_max_budget_usd":
        return _failed("max_budget", f"the agent reached max_budget_usd: {detail or f.subtype}")
    if f.subtype is not None:
        return _api_error(f, detail or f.subtype)
    return _no_result(f)


def _api_error(f: RunFacts, detail: str) -> Outcome:
    """A result with ``is_error``: mostly API failures, classified most-specific first."""
    err, status = f.assistant_error, f.api_error_status
    if err == "authentication_failed" or _NOT_LOGGED_IN.search(detail) or status in (401, 403):
        return _auth(detail)
    if err == "billing_error" or status == 402:
        return _failed("billing", f"billing problem with the Anthropic account: {detail}")
    if err == "rate_limit" or status == 429 or f.rate_limit_resets_at is not None:
        return _temporary("rate_limit", f"rate limited: {detail}{_resets(f)}")
    if status in (503, 529) or _OVERLOAD.search(detail):
        return _temporary("overloaded", f"the API is overloaded: {detail}")
    if status is not None and status >= 500:
        return _temporary("server_error", f"the API failed: {detail}")
    if status == 408 or (status is None and (_NETWORK.search(detail) or _TIMEOUT.search(detail))):
        return _temporary("network", f"network failure: {detail}")
    if err == "server_error":
        return _temporary("server_error", f"the API failed: {detail}")
    if err == "invalid_request" or (status is not None and 400 <= status < 500):
        return _failed("invalid_request", f"the API rejected the request: {detail}")
    if _RATE.search(detail):
        return _temporary("rate_limit", f"rate limited: {detail}")
    if _AUTH.search(detail):
        return _auth(detail)
    return _failed("agent_error", f"the agent failed: {detail}")


def _auth(detail: str) -> Outcome:
    if _NOT_LOGGED_IN.search(detail):
        return _failed("not_logged_in", f"Claude is not logged in ({detail}): {LOGIN_HINT}")
    return _failed("authentication", f"authentication failed ({detail}): {LOGIN_HINT}")


def _resets(f: RunFacts) -> str:
    if not f.rate_limit_resets_at:
        return ""
    from datetime import UTC, datetime

    return f" (resets at {datetime.fromtimestamp(f.rate_limit_resets_at, UTC).isoformat()})"


def _no_result(f: RunFacts) -> Outcome:
    """The stream ended without a result message: the CLI failed to start, crashed or lied."""
    stderr = _one_line(f.stderr_tail[-1]) if f.stderr_tail else ""
    text = _one_line(f.exception_text.splitlines()[0]) if f.exception_text else ""
    if f.exception_kind == "cli_not_found":
        return _failed("cli_not_found", f"the claude CLI was not found: {text}")
    if f.exception_kind == "protocol":
        return _failed("protocol", f"the claude CLI wrote output that is not stream-json: {text}")
    seen = " ".join([text, stderr, *f.texts])
    if _NETWORK.search(seen) or _OVERLOAD.search(seen) or _RATE.search(seen):
        return _temporary(
            "network", f"the claude CLI failed on a temporary error: {text or stderr}"
        )
    if _NOT_LOGGED_IN.search(seen):
        return _auth(_one_line(seen))
    if f.exception_kind is not None:
        where = f" ({stderr})" if stderr else ""
        return _failed("cli_failed", f"the claude CLI failed: {text}{where}")
    return _failed("no_result", "the claude CLI ended without a result")


def _signal_name(signum: int) -> str:
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
