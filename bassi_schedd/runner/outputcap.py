"""Keeping a run's ``output.log`` under the task's ``max_output``: the tail stays, the head goes.

The child writes the file itself (through an ``O_APPEND`` descriptor it inherited), so the
daemon cannot stand in between. Instead it trims the file in place: the last ``max_bytes`` (from
a line start where one is near) move to the front behind a one-line marker, then the file is
truncated. ``O_APPEND`` writes always go to the current end, so the child carries on after the
kept tail, and bytes it appends while the tail is being moved are copied along before the
truncation. Only a write landing in the microseconds between the last size check and the
truncation could be lost.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

from bassi_schedd.core.limits import show_size

# While a run goes on, trim only once the file is this many times over the cap, so a steady
# writer costs one copy of max_output per max_output written, not one per daemon wake-up.
LIVE_SLACK = 2
_CHUNK = 1 << 20
# Look this far into the kept tail for a line start, so it does not begin mid-line.
_LINE_SEARCH = 4096
# The marker line is shorter than this (max_output is at least 1KB, so a tail always remains).
_MARKER_ROOM = 200
_MARKER = re.compile(rb"\[bassi-schedd: (\d{1,20}) bytes of earlier output removed[^\n]{0,150}\n")
# A child writing faster than we copy must not hold the daemon: give up following it after these.
_PASSES = 8


class Trimmed(NamedTuple):
    """What one trim did: output bytes removed in all (this trim and earlier ones), and whether
    this was the file's first trim (no marker yet)."""

    removed_bytes: int
    first: bool


def trim_output(path: Path, max_bytes: int, *, live: bool = False) -> Trimmed | None:
    """Cut ``path`` down to its last ``max_bytes`` bytes (marker included); None if untouched.

    ``live``: the run still writes; trim only past ``LIVE_SLACK`` times the cap. A missing or
    unreadable file is left alone.
    """
    try:
        size = os.stat(path).st_size
    except OSError:
        return None
    if size <= max_bytes * (LIVE_SLACK if live else 1):
        return None
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        return _trim(fd, size, max_bytes)
    except OSError:
        return None
    finally:
        os.close(fd)


def _trim(fd: int, size: int, max_bytes: int) -> Trimmed:
    # The kept tail leaves room for the marker, so the result is at most max_bytes and the
    # trim at the end of a run does not cut again what a trim during it just kept.
    start = size - (max_bytes - _MARKER_ROOM)
    head = os.pread(fd, _LINE_SEARCH, start)
    newline = head.find(b"\n")
    if newline != -1 and newline + 1 < len(head):
        start += newline + 1
    removed = start
    old = _MARKER.match(os.pread(fd, _MARKER_ROOM, 0))
    if old is not None:  # trimmed before: count the output removed then, not the old marker
        removed = int(old.group(1)) + start - old.end()
    marker = (
        f"[bassi-schedd: {removed} bytes of earlier output removed to keep this file under "
        f"max_output = {show_size(max_bytes)}]\n"
    ).encode()
    os.pwrite(fd, marker, 0)
    write_at, read_at = len(marker), start
    for _ in range(_PASSES):
        end = os.fstat(fd).st_size  # the child may have appended meanwhile: move that too
        while read_at < end:
            chunk = os.pread(fd, min(_CHUNK, end - read_at), read_at)
            if not chunk:
                break
            os.pwrite(fd, chunk, write_at)  # write_at < read_at: never over unread bytes
            read_at += len(chunk)
            write_at += len(chunk)
        if os.fstat(fd).st_size == end:
            break
    os.ftruncate(fd, write_at)
    return Trimmed(removed, first=old is None)


def tail_text(path: Path, max_chars: int, lines: int | None = None) -> str:
    """The end of an output file as text: its last ``lines`` lines (all if None), at most
    ``max_chars`` characters; "" when it cannot be read. Reads only the file's end."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - max_chars * 4, 0))  # UTF-8 takes at most 4 bytes a character
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if lines is not None:
        text = "".join(text.splitlines(keepends=True)[-lines:])
    return text[-max_chars:]
