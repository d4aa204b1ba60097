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
    """Escape what a hostile name could use on a reader: control characters (line breaks, terminal
    escapes), invisible format characters (bidi overrides), and bytes that are not UTF-8.

    Names from the disk keep such bytes as lone surrogates (Python's surrogateescape), which no
    UTF-8 stream can print; they are shown as ``\\xNN``, so ``caf\\xe9.toml`` names the file.
    This is the one helper every command uses for a name or a path read from the disk.
    """
    if text.isprintable():
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _UNSAFE else c for c in text)


_UNSAFE = ("Cc", "Cf", "Cs", "Zl", "Zp")


def _escape(c: str) -> str:
    if 0xDC80 <= ord(c) <= 0xDCFF:  # one undecodable byte, kept by surrogateescape
        return f"\\x{ord(c) - 0xDC00:02x}"
    return c.encode("unicode_escape").decode()
