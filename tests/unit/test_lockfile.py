"""The environment the suite runs in is exactly what requirements.lock pins."""

from __future__ import annotations

import os
import re
from importlib import metadata

import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name
from support import REPO

LOCK = REPO / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def locked() -> dict[str, str]:
    """Name -> version for every lock line whose environment marker applies here."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        m = PIN.match(line)
        if m and (m.group(3) is None or Marker(m.group(3)).evaluate()):
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def test_every_lock_line_has_hashes() -> None:
    text = LOCK.read_text()
    assert len(locked()) > 10
    for block in re.split(r"\n(?=[A-Za-z])", text.split("\n\n", 1)[-1]):
        if PIN.match(block.splitlines()[0]):
            assert "--hash=sha256:" in block, block.splitlines()[0]


@pytest.mark.skipif(
    os.environ.get("BASSI_TEST_LATEST") == "1", reason="make test-latest runs without the lock"
)
def test_installed_distributions_equal_the_lock() -> None:
    installed = {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in metadata.distributions()
        if canonicalize_name(d.metadata["Name"]) not in ("bassi-schedd", "pip", "setuptools")
    }
    assert installed == locked()
