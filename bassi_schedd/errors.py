"""Exceptions that carry one user-facing sentence."""

import unicodedata


class UserError(Exception):
    """A problem the user can fix; its message is one clear sentence, shown without traceback."""

    exit_code = 1


class UsageError(UserError):
    """Bad command-line usage (exit 2)."""

    exit_code = 2


class TaskFileError(UserError):
    """A task file that cannot be loaded; the message names the file and key."""

    def __init__(self, path: str, message: str, key: str | None = None, line: int | None = None):
        self.path = path
        self.key = key
        self.line = line
        where = path if line is None else f"{path}:{line}"
        text = f"{where}: key '{key}': {message}" if key is not None else f"{where}: {message}"
        super().__init__(printable(text))


def printable(text: str) -> str:
    """Escape control characters, so a hostile file cannot break lines or drive the terminal."""
    if text.isprintable():
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _CONTROL else c for c in text)


_CONTROL = ("Cc", "Zl", "Zp")


def _escape(c: str) -> str:
    return c.encode("unicode_escape").decode()
