"""Reading a TOML file we are about to trust: ownership/mode refusal, one-sentence parse errors,
and finding the line where a key is set (TOML parsers do not report it for semantic errors)."""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

from bassi_schedd.errors import TaskFileError


class FieldError(Exception):
    """One problem with one key (``None`` for the file as a whole)."""

    def __init__(self, key: str | None, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


def unsafe_mode_reason(st: os.stat_result, path: object) -> str | None:
    """Why a file that decides what we execute must be refused (as cron and sshd do), or None."""
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    uid = os.getuid()
    if st.st_uid != uid:
        return (
            f"is owned by uid {st.st_uid}, not by you (uid {uid}), so it is refused; "
            f"run 'chown {uid} {path}' if you trust it"
        )
    bits = [
        who for who, bit in (("group", stat.S_IWGRP), ("world", stat.S_IWOTH)) if st.st_mode & bit
    ]
    if bits:
        mode = stat.S_IMODE(st.st_mode)
        return (
            f"is {'/'.join(bits)}-writable (mode {mode:04o}), so it is refused; "
            f"run 'chmod go-w {path}'"
        )
    return None


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
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        reason = str(e)
        m = _TOML_AT.search(reason)
        line: int | None = None
        if m:
            line = int(m.group(1)) if m.group(1) else max(1, len(text.splitlines()))
            reason = reason[: m.start()]
        reason = reason[:1].lower() + reason[1:]
        raise TaskFileError(str(path), f"is not valid TOML: {reason}", line=line) from None


def read_checked_toml(path: Path) -> tuple[dict[str, Any], str, os.stat_result]:
    """Open, refuse if unsafe (checked on the open file, so no swap in between), read, parse."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise TaskFileError(str(path), "does not exist") from None
    except OSError as e:
        raise TaskFileError(str(path), f"cannot be opened: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        reason = unsafe_mode_reason(st, path)
        if reason:
            raise TaskFileError(str(path), reason)
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        raw = b"".join(chunks)
    except OSError as e:
        raise TaskFileError(str(path), f"cannot be read: {e.strerror}") from None
    finally:
        os.close(fd)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise TaskFileError(str(path), "is not valid UTF-8 text", line=line) from None
    return parse_toml(path, text), text, st
