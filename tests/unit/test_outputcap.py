"""outputcap.trim_output: the tail of output.log stays, whole lines, with a marker that counts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from bassi_schedd.runner.outputcap import LIVE_SLACK, trim_output

MARKER = re.compile(rb"^\[bassi-schedd: (\d+) bytes of earlier output removed[^\n]*\]\n")


def numbered(path: Path, first: int, last: int) -> bytes:
    data = b"".join(f"line {i}\n".encode() for i in range(first, last + 1))
    with path.open("ab") as f:
        f.write(data)
    return data


def kept_numbers(data: bytes) -> list[int]:
    m = MARKER.match(data)
    body = data[m.end() :] if m else data
    return [int(line.split()[1]) for line in body.decode().splitlines()]


def test_small_files_and_missing_files_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    assert trim_output(path, 1024) is None
    numbered(path, 1, 100)  # 792 bytes
    assert trim_output(path, 1024) is None
    assert kept_numbers(path.read_bytes()) == list(range(1, 101))


def test_keeps_the_tail_in_whole_lines_within_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    written = numbered(path, 1, 10_000)
    trimmed = trim_output(path, 4096)
    assert trimmed is not None and trimmed.first
    data = path.read_bytes()
    assert len(data) <= 4096
    m = MARKER.match(data)
    assert m is not None and int(m.group(1)) == trimmed.removed_bytes
    assert b"max_output = 4KB]" in data.splitlines()[0]
    kept = kept_numbers(data)
    assert kept == list(range(kept[0], 10_001))
    # What was removed plus what was kept is exactly what was written.
    assert trimmed.removed_bytes + len(data) - m.end() == len(written)


def test_a_second_trim_counts_everything_removed_so_far(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    total = len(numbered(path, 1, 5_000))
    first = trim_output(path, 2048)
    total += len(numbered(path, 5_001, 9_000))
    second = trim_output(path, 2048)
    assert first is not None and second is not None and not second.first
    data = path.read_bytes()
    m = MARKER.match(data)
    assert m is not None and int(m.group(1)) == second.removed_bytes
    assert second.removed_bytes + len(data) - m.end() == total
    assert kept_numbers(data)[-1] == 9_000
    assert data.count(b"[bassi-schedd:") == 1


def test_live_trims_wait_for_slack(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    numbered(path, 1, 450)  # 3,942 bytes: over 2KB, under LIVE_SLACK x 2KB
    assert path.stat().st_size <= LIVE_SLACK * 2048
    assert trim_output(path, 2048, live=True) is None
    assert trim_output(path, 2048) is not None


def test_a_writer_that_keeps_appending_continues_after_the_kept_tail(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    code = "import sys\nfor i in range(1, 300_001): sys.stdout.write(f'line {i}\\n')\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=fd)
    os.close(fd)
    trims = 0
    while proc.poll() is None:
        trims += trim_output(path, 64 * 1024, live=True) is not None
    assert proc.wait() == 0
    trim_output(path, 64 * 1024)
    data = path.read_bytes()
    assert len(data) <= 64 * 1024 and trims > 0
    kept = kept_numbers(data)
    # In order and ending with the last line; a write racing the truncation itself could be
    # lost (documented), so contiguity is not asserted here.
    assert kept == sorted(set(kept)) and kept[-1] == 300_000


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.log"
    numbered(target, 1, 10_000)
    before = target.read_bytes()
    link = tmp_path / "output.log"
    link.symlink_to(target)
    assert trim_output(link, 1024) is None
    assert target.read_bytes() == before
