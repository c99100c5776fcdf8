"""Text files in and out for the command-line tools: UTF-8 lines in, lines written atomically.

A line is what ends at "\\n", so line numbers agree with ``wc -l`` and editors; each line is
normalised as the corpus was (``nmt.text.normalize``), so a stray "\\r", a no-break space or
a decomposed accent reads as it did in training.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from nmt.files import atomic_write
from nmt.text import normalize

STDIN = "-"


class TextFileError(ValueError):
    """A file that cannot be read as UTF-8 text, or written. One line naming the file (and line)."""


def read_lines(path: str | Path) -> list[str]:
    """The normalised lines of a UTF-8 file, or of stdin for "-"."""
    name = "<stdin>" if str(path) == STDIN else str(path)
    try:
        data = sys.stdin.buffer.read() if str(path) == STDIN else Path(path).read_bytes()
    except OSError as e:
        raise TextFileError(f"{name}: cannot read ({e.strerror or e})") from None
    if not data:
        return []
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":  # the newline that ends the last line starts no new one
        raw_lines.pop()
    return [_decode(raw, name, number) for number, raw in enumerate(raw_lines, start=1)]


def _decode(raw: bytes, name: str, number: int) -> str:
    try:
        return normalize(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise TextFileError(
            f"{name} line {number}: not UTF-8 (byte {raw[e.start]:#04x} at position {e.start + 1})"
        ) from None


def write_lines_atomic(path: str | Path, lines: Iterable[str]) -> None:
    """Write ``lines`` to ``path`` whole or not at all: on any error ``path`` is left as it was."""
    try:
        with atomic_write(path, "w", encoding="utf-8", newline="\n") as f:
            for line in lines:
                f.write(line + "\n")
    except OSError as e:
        raise TextFileError(f"{path}: cannot write ({e.strerror or e})") from None
