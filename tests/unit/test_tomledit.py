"""set_top_level_bool: one top-level boolean changes, every other byte stays."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bassi_schedd.config.tomledit import TomlEditError, set_top_level_bool

TASK = """\
# Weekly sales report
description = "Weekly sales report"   # shown by list
schedule = "0 9 * * MON"
prompt = \"\"\"
Pretend this is TOML:
enabled = true
[agent]
\"\"\"
enabled = true  # flipped by pause/resume
command = [
  ["nested"],
  "x",
]

# options for the executor
[agent]
model = "claude-sonnet-4-5"
"""


def test_existing_value_is_replaced_in_place() -> None:
    out = set_top_level_bool(TASK, "enabled", False)
    assert out == TASK.replace(
        "enabled = true  # flipped by pause/resume", "enabled = false  # flipped by pause/resume"
    )
    assert set_top_level_bool(out, "enabled", True) == TASK


def test_same_value_returns_the_same_text() -> None:
    assert set_top_level_bool(TASK, "enabled", True) == TASK


def test_compact_spelling_and_crlf_are_kept() -> None:
    text = 'schedule = "@daily"\r\nenabled=false\r\n[agent]\r\nmodel = "m"\r\n'
    assert set_top_level_bool(text, "enabled", True) == text.replace("=false", "=true")


def test_quoted_key_is_the_same_key() -> None:
    text = '"enabled" = true # q\nx = 1\n'
    assert set_top_level_bool(text, "enabled", False) == '"enabled" = false # q\nx = 1\n'


def test_missing_key_goes_after_the_last_top_level_pair_not_into_a_table() -> None:
    text = TASK.replace("enabled = true  # flipped by pause/resume\n", "")
    out = set_top_level_bool(text, "enabled", False)
    # After the multi-line array (the last top-level pair), before the comment of [agent].
    assert out == text.replace('  "x",\n]\n', '  "x",\n]\nenabled = false\n')
    assert tomllib.loads(out)["agent"] == {"model": "claude-sonnet-4-5"}


def test_missing_key_with_crlf_gets_a_crlf_line() -> None:
    text = 'schedule = "@daily"\r\n\r\n[agent]\r\nmodel = "m"\r\n'
    out = set_top_level_bool(text, "enabled", False)
    assert out == 'schedule = "@daily"\r\nenabled = false\r\n\r\n[agent]\r\nmodel = "m"\r\n'


def test_missing_key_at_end_of_file_without_newline() -> None:
    assert set_top_level_bool('a = "x"', "enabled", False) == 'a = "x"\nenabled = false\n'


def test_missing_key_in_a_file_of_tables_only_goes_first() -> None:
    out = set_top_level_bool("[agent]\nenabled = true\n", "enabled", False)
    assert out == "enabled = false\n[agent]\nenabled = true\n"


def test_key_inside_a_table_or_a_string_is_not_the_top_level_key() -> None:
    text = "a = 'enabled = true'\nb = '''\nenabled = true\n'''\n[t]\nenabled = true\n"
    out = set_top_level_bool(text, "enabled", False)
    assert out == text.replace("'''\n[t]", "'''\nenabled = false\n[t]")
    assert tomllib.loads(out)["t"] == {"enabled": True}


def test_strings_with_hashes_quotes_and_brackets() -> None:
    text = (
        'a = "x # not a comment \\" [still] string"\n'
        "b = 'C:\\dir\\ # [x] \"'\n"
        'c = """one""two"""\n'
        'd = """\nx\\"""\n[fake]\n"""\n'
        "enabled = false # real\n"
    )
    assert set_top_level_bool(text, "enabled", True) == text.replace("false # real", "true # real")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('enabled = "yes"\n', "something other than true or false"),
        ("enabled.x = 1\n", "something other than true or false"),
        ("a = \n", "not valid TOML"),
        ('x = """\n', "not valid TOML"),
    ],
)
def test_refusals(text: str, reason: str) -> None:
    with pytest.raises(TomlEditError, match=reason):
        set_top_level_bool(text, "enabled", False)


# -- property: exactly one line differs, and only in its value word ------------------------------

PAIRS = [
    'description = "d # h"',
    "schedule = '0 9 * * MON'",
    'prompt = """\nenabled = true\n[agent]\n"""',
    "append = '''\n# [x]\n'''",
    'command = [\n  ["a"],\n  "b", # c\n]',
    "env = { A = \"1\", B = '[2]' }",
    "timeout = 30 # seconds",
    "retries = 0",
]
ENABLED = ["enabled = true", "enabled=false", "enabled = false   # keep me", "'enabled' = true"]
TABLES = ["", '\n[agent]\nmodel = "m"\nenabled = true\n', "\n# c\n[notify]\non = []\n"]


@settings(max_examples=150, deadline=None)
@given(
    pairs=st.lists(st.sampled_from(PAIRS), min_size=1, max_size=5, unique=True),
    enabled=st.none() | st.sampled_from(ENABLED),
    position=st.integers(0, 5),
    table=st.sampled_from(TABLES),
    crlf=st.booleans(),
    value=st.booleans(),
)
def test_only_the_enabled_line_changes(
    pairs: list[str], enabled: str | None, position: int, table: str, crlf: bool, value: bool
) -> None:
    body = list(pairs)
    if enabled is not None:
        body.insert(min(position, len(body)), enabled)
    text = "\n".join(body) + "\n" + table
    if crlf:
        text = text.replace("\n", "\r\n")
    out = set_top_level_bool(text, "enabled", value)
    assert tomllib.loads(out)["enabled"] is value
    nl = "\r\n" if crlf else "\n"
    before, after = text.split(nl), out.split(nl)
    word = "true" if value else "false"
    if enabled is None:
        added = next(i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b)
        assert after[added] == f"enabled = {word}"
        assert after[:added] + after[added + 1 :] == before
    else:
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        assert len(changed) <= 1
        for i in changed:
            old = "false" if value else "true"
            assert after[i] == before[i].replace(old, word, 1)
