"""Small HTML helpers: every value passes through ``esc``; the page frame is templates/base.html.

No markup is ever built from unescaped data: task names, descriptions, output and transcripts
are text to the browser, whatever they contain.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache
from html import escape
from importlib.resources import files
from string import Template

from bassi_schedd.core.durations import format_duration_s
from bassi_schedd.web.reader import DaemonFacts


def esc(value: object) -> str:
    """Text made safe for HTML content and quoted attribute values."""
    return escape("" if value is None else str(value), quote=True)


@cache
def _template(name: str) -> Template:
    return Template(files("bassi_schedd.web").joinpath("templates", name).read_text("utf-8"))


def page(title: str, body: str, daemon: DaemonFacts, home: str, page_id: str) -> str:
    """A whole page: ``body`` is already HTML; everything else is escaped here."""
    if daemon.pid is None:
        cls, text = "down", "daemon not running"
    else:
        tick = (
            "never ticked"
            if daemon.last_tick_age_s is None
            else (f"last tick {ago(daemon.last_tick_age_s)}")
        )
        cls = "stale" if daemon.stale else "up"
        text = f"daemon running (pid {daemon.pid}), {tick}"
    return _template("base.html").substitute(
        title=esc(title),
        page=esc(page_id),
        daemon_class=cls,
        daemon_text=esc(text),
        home=esc(home),
        body=body,
    )


def ago(seconds: float) -> str:
    """``12s ago`` / ``in 3m``."""
    if seconds < 0:
        return f"in {format_duration_s(-seconds)}"
    return f"{format_duration_s(seconds)} ago"


def when(dt: datetime | str | None) -> str:
    """A time as ``2026-12-06 09:00 UTC`` (in the zone it carries), or ``-``."""
    if dt is None:
        return "-"
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    return dt.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def money(usd: float | None) -> str:
    """``$0.0123`` (4 decimals below a dollar), ``-`` for none."""
    if usd is None:
        return "-"
    if usd == 0:
        return "$0"
    return f"${usd:.4f}" if usd < 1 else f"${usd:.2f}"


def status_badge(status: object) -> str:
    """A status word, coloured by class (``st-success``, ``st-failed``...)."""
    text = "-" if status is None else str(status)
    return f'<span class="badge st-{esc(text)}">{esc(text)}</span>'


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    """A table; the cells are HTML already (escape them when building the rows)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def button(label: str, url: str, cls: str = "", confirm: str | None = None) -> str:
    """A button the page's script turns into a POST to ``url`` (no inline script: CSP)."""
    extra = f' data-confirm="{esc(confirm)}"' if confirm else ""
    return (
        f'<button type="button" class="act {esc(cls)}" data-post="{esc(url)}"{extra}>'
        f"{esc(label)}</button>"
    )


def link(text: str, url: str) -> str:
    """An anchor with escaped text and URL."""
    return f'<a href="{esc(url)}">{esc(text)}</a>'


def dl(items: Iterable[tuple[str, str]]) -> str:
    """A definition list; the values are HTML already."""
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"
