"""Byte-preserving edits of a TOML document: change one top-level boolean, touch nothing else.

TOML writers (tomli-w) drop comments and re-order keys, which users of hand-written task files
would rightly resent; so ``pause``/``resume`` edit the text itself. A small lexer tracks
multi-line strings and arrays so that text inside a prompt or a multi-line array is never taken
for a key or a table header. The result is always checked with tomllib: it must parse to exactly
the original document with only the one key changed, otherwise the edit is refused.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

_KEY_PART = r"(?:[A-Za-z0-9_-]+|\"(?:[^\"\\]|\\.)*\"|'[^']*')"
_KEY = re.compile(rf"\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=[ \t]*")
_BOOL = re.compile(r"(true|false)(?=[ \t]*(?:#.*)?\r?$)")


class TomlEditError(ValueError):
    """The edit cannot be made safely; the message is one short reason."""


@dataclass(frozen=True)
class _Line:
    """One physical line and where it stands in the document."""

    start: int  # offset of its first character in the text
    text: str  # without its line ending ("\n"); a "\r" before it is kept here
    ending: str  # "\n", or "" for a last line without one
    statement: bool  # begins a key/value pair or a table header (not a continuation)


def _lines(text: str) -> list[_Line]:
    """Split on "\\n" only (str.splitlines also splits on characters TOML strings may hold)."""
    out: list[_Line] = []
    mode: str | None = None  # inside a multi-line string: its delimiter
    depth = 0  # open [ and { across lines (multi-line arrays)
    offset = 0
    parts = text.split("\n")
    for i, raw in enumerate(parts):
        ending = "\n" if i < len(parts) - 1 else ""
        if i == len(parts) - 1 and raw == "":
            break
        statement = mode is None and depth == 0
        if statement and raw.lstrip().startswith("["):
            pass  # a table header: brackets and quotes in it do not open anything
        else:
            mode, depth = _scan(raw, mode, depth)
        out.append(_Line(offset, raw, ending, statement))
        offset += len(raw) + len(ending)
    return out


def _scan(line: str, mode: str | None, depth: int) -> tuple[str | None, int]:
    """Lexer state after ``line``: an open multi-line string delimiter and bracket depth."""
    i, n = 0, len(line)
    while i < n:
        if mode is not None:
            if mode == '"""' and line[i] == "\\":
                i += 2
                continue
            if line.startswith(mode, i):
                i += 3
                # Up to two more quotes right before the closing ones belong to the content.
                extra = 0
                while i < n and line[i] == mode[0] and extra < 2:
                    i += 1
                    extra += 1
                mode = None
                continue
            i += 1
            continue
        c = line[i]
        if c == "#":
            break
        if line.startswith('"""', i) or line.startswith("'''", i):
            mode = line[i : i + 3]
            i += 3
            continue
        if c == '"':
            i += 1
            while i < n and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
            i += 1
            continue
        if c == "'":
            end = line.find("'", i + 1)
            i = n if end < 0 else end + 1
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth = max(depth - 1, 0)
        i += 1
    return mode, depth


def _key_path(raw_key: str) -> list[str]:
    """The parts of a (possibly dotted, possibly quoted) key, as TOML reads them."""
    try:
        node: Any = tomllib.loads(f"{raw_key} = 0")
    except tomllib.TOMLDecodeError:
        return []
    parts: list[str] = []
    while isinstance(node, dict):
        (name,) = node
        parts.append(name)
        node = node[name]
    return parts


def _newline(text: str, near: _Line | None) -> str:
    if near is not None and near.ending:
        return "\r\n" if near.text.endswith("\r") else "\n"
    return "\r\n" if "\r\n" in text else "\n"


def _parse(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TomlEditError(f"the file is not valid TOML ({e})") from None


def set_top_level_bool(text: str, key: str, value: bool) -> str:
    """Return ``text`` with top-level ``key`` set to ``value``, every other byte unchanged.

    An existing ``key = true|false`` has just its value word replaced (spacing, comment and
    line ending kept). A missing key is added as its own line ``key = value`` right after the
    last top-level key/value pair (so never inside a table), with the file's line ending.
    Raises :class:`TomlEditError` when the text is not valid TOML, the key holds something
    other than a boolean, or the edited text would not parse to the same document with only
    ``key`` changed.
    """
    before = _parse(text)
    if key in before and not isinstance(before[key], bool):
        raise TomlEditError(f"'{key}' is set to something other than true or false")
    word = "true" if value else "false"
    lines = _lines(text)
    last_pair: _Line | None = None  # the last line of the last top-level key/value pair
    in_pair = False
    new_text: str | None = None
    for line in lines:
        if line.statement:
            if line.text.lstrip().startswith("["):
                break  # the first table header ends the top-level section
            m = _KEY.match(line.text)
            in_pair = m is not None
            if m is not None and key in m.group(1) and _key_path(m.group(1)) == [key]:
                b = _BOOL.match(line.text, m.end())
                if b is None:
                    raise TomlEditError(f"'{key}' is not written as a plain true or false")
                at = line.start + b.start(1)
                new_text = text[:at] + word + text[line.start + b.end(1) :]
                break
        if in_pair:
            last_pair = line
    if new_text is None:
        nl = _newline(text, last_pair)
        addition = f"{key} = {word}{nl}"
        if last_pair is None:
            at = 0  # no top-level pair at all: the key goes first, before any table
        else:
            at = last_pair.start + len(last_pair.text) + len(last_pair.ending)
            if not last_pair.ending:
                addition = nl + addition
        new_text = text[:at] + addition + text[at:]
    expected = dict(before)
    expected[key] = value
    if _parse(new_text) != expected:
        raise TomlEditError(f"changing '{key}' would alter other parts of the file")
    return new_text
