"""Reading a TOML file we are about to trust: refusal of unsafe files (userfile.py), one-sentence
parse errors, and finding the line where a key is set (TOML parsers do not report it for semantic
errors)."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from bassi_schedd.config.userfile import UnreadableFileError, read_user_text
from bassi_schedd.core.errors import TaskFileError

# Real task files nest two or three levels; far deeper is a hostile file, and tomllib's
# recursive parser would hit Python's recursion limit on it (~500 levels).
MAX_TOML_DEPTH = 32


class FieldError(Exception):
    """One problem with one key (``None`` for the file as a whole)."""

    def __init__(self, key: str | None, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


# -- locating a key in the file text -----------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(
    r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=(.*)$"
)
_PART = re.compile(r"[A-Za-z0-9_-]+|\"([^\"]*)\"|'([^']*)'")


def _dotted(raw: str) -> str:
    return ".".join(m.group(1) or m.group(2) or m.group(0) for m in _PART.finditer(raw))


def _opens_multiline(rest: str) -> str | None:
    """The delimiter of a multi-line string left open at the end of ``rest``, if any."""
    for quote in ('"""', "'''"):
        if rest.count(quote) % 2 == 1:
            return quote
    return None


def find_key_line(text: str, key: str) -> int | None:
    """1-based line where ``key`` (dotted, e.g. "agent.max_turns") is set, best effort.

    Falls back to the line of the enclosing table or inline table; lines inside multi-line
    strings are skipped so that a prompt mentioning ``schedule = ...`` is not mistaken for it.
    """
    key = key.split("[", 1)[0]
    section = ""
    fallback: int | None = None
    open_quote: str | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if open_quote is not None:
            if line.count(open_quote) % 2 == 1:
                open_quote = None
            continue
        header = _HEADER.match(line)
        if header:
            section = _dotted(header.group(1))
            if section == key:
                return lineno
            if key.startswith(section + ".") and fallback is None:
                fallback = lineno
            continue
        assign = _ASSIGN.match(line)
        if not assign:
            continue
        full = f"{section}.{_dotted(assign.group(1))}" if section else _dotted(assign.group(1))
        if full == key:
            return lineno
        if key.startswith(full + "."):
            fallback = lineno
        open_quote = _opens_multiline(assign.group(2))
    return fallback


# -- reading a checked TOML file ---------------------------------------------------------------

_TOML_AT = re.compile(r"\s*\(at line (\d+), column \d+\)\s*$|\s*\(at end of document\)\s*$")


def file_error(path: Path, text: str | None, problem: FieldError) -> TaskFileError:
    """Turn an :class:`FieldError` into the user-facing error, with the key's line when found."""
    line = find_key_line(text, problem.key) if text is not None and problem.key else None
    return TaskFileError(str(path), problem.message, key=problem.key, line=line)


def parse_toml(path: Path, text: str) -> dict[str, Any]:
    """tomllib.loads, with its error reduced to one sentence naming the file and line."""
    if text.startswith("\ufeff"):
        raise TaskFileError(
            str(path),
            "starts with a UTF-8 byte-order mark (BOM), which TOML does not allow; "
            "save the file as UTF-8 without a BOM",
            line=1,
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        reason = str(e)
        m = _TOML_AT.search(reason)
        line: int | None = None
        if m:
            line = int(m.group(1)) if m.group(1) else max(1, len(text.splitlines()))
            reason = reason[: m.start()]
        reason = reason[:1].lower() + reason[1:]
        raise TaskFileError(str(path), f"is not valid TOML: {reason}", line=line) from None
    except RecursionError:
        raise _too_deep(path) from None
    except ValueError:  # tomllib's int() refuses over 4300 digits (sys.get_int_max_str_digits)
        raise TaskFileError(str(path), "holds a number too long to read") from None
    if _depth(data) > MAX_TOML_DEPTH:
        raise _too_deep(path)
    return data


def _too_deep(path: Path) -> TaskFileError:
    reason = f"nests arrays or tables more than {MAX_TOML_DEPTH} levels deep, so it is refused"
    return TaskFileError(str(path), reason)


def _depth(data: object) -> int:
    """How deeply lists and tables nest in ``data`` (iterative: no recursion limit)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, depth + 1)
            if deepest > MAX_TOML_DEPTH:
                break
            stack.extend((c, depth + 1) for c in node if isinstance(c, dict | list))
    return deepest


def read_checked_toml(path: Path) -> tuple[dict[str, Any], str, os.stat_result]:
    """Read through the guard of userfile.py (refused, too large, not UTF-8), then parse."""
    try:
        text, st = read_user_text(path)
    except UnreadableFileError as e:
        raise TaskFileError(str(path), e.reason, line=e.line) from None
    return parse_toml(path, text), text, st
