"""logs.EVENTS is exactly the set of event names the code emits (SPEC 7 plus ours)."""

from __future__ import annotations

import ast
from pathlib import Path

from support import REPO

from bassi_schedd.logs.events import EVENTS

PACKAGE = REPO / "bassi_schedd"
LEVEL_METHODS = {"debug", "info", "warning", "error", "critical", "exception", "msg"}


def _literals(node: ast.expr | None, where: str) -> list[str]:
    """The event names an argument can be: a literal, or a choice between literals."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literals(node.body, where) + _literals(node.orelse, where)
    raise AssertionError(f"{where}: an event name must be a literal, not {ast.dump(node)[:80]}")


def emitted() -> dict[str, list[str]]:
    """Event name -> where the package emits it (calls on `log`, and raw log-file records)."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.name}:{getattr(node, 'lineno', 0)}"
            names: list[str] = []
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "log"
            ):
                if node.func.attr in LEVEL_METHODS:
                    names = _literals(node.args[0] if node.args else None, where)
                elif node.func.attr == "log":
                    names = _literals(node.args[1] if len(node.args) > 1 else None, where)
            elif isinstance(node, ast.Dict) and path.name == "logfile.py":
                # records the log writer builds itself (not a logger call)
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "event":
                        names = _literals(value, where)
            for name in names:
                found.setdefault(name, []).append(where)
    return found


def test_every_emitted_event_is_listed() -> None:
    unlisted = {k: v for k, v in emitted().items() if k not in EVENTS}
    assert unlisted == {}


def test_every_listed_event_is_emitted() -> None:
    assert sorted(set(EVENTS) - set(emitted())) == []
    assert len(set(EVENTS)) == len(EVENTS)


def test_the_scan_sees_dynamic_names(tmp_path: Path) -> None:
    """The checker itself: a non-literal event name is an error, a choice of literals is two."""
    tree = ast.parse('log.info("a.b" if x else "c.d")\nlog.warning(name)\n')
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert _literals(calls[0].args[0], "t") == ["a.b", "c.d"]
    try:
        _literals(calls[1].args[0], "t")
    except AssertionError as e:
        assert "must be a literal" in str(e)
    else:
        raise AssertionError("a non-literal event name was accepted")
