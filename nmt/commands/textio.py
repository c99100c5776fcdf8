"""Text files in and out for the command-line tools: UTF-8 lines in, lines written atomically.

A line is what ends at "\\n", so line numbers agree with ``wc -l`` and editors; each line is
normalised as the corpus was (``nmt.text.normalize``), so a stray "\\r", a no-break space or
a decomposed accent reads as it did in training.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from nmt.files import atomic_write
from nmt.text import normalize

STDIN = "-"


class TextFileError(ValueError):
    """A file that cannot be read as UTF-8 text, or written. One line naming the file (and line)."""


def read_lines(path: str | Path) -> list[str]:
    """The normalised lines of a UTF-8 file, or of stdin for "-"."""
    return list(iter_lines(path))


def iter_lines(path: str | Path) -> Iterator[str]:
    """The normalised lines of a UTF-8 file, or of stdin for "-", read one at a time."""
    name = _name(path)
    try:
        stream = sys.stdin.buffer if str(path) == STDIN else open(path, "rb")  # noqa: SIM115, closed below
    except OSError as e:
        raise TextFileError(f"{name}: cannot read ({e.strerror or e})") from None
    try:
        for number, raw in enumerate(stream, start=1):
            yield _decode(raw.removesuffix(b"\n"), name, number)
    except OSError as e:
        raise TextFileError(f"{name}: cannot read ({e.strerror or e})") from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def read_references(paths: Sequence[str]) -> list[list[str]]:
    """Per input line, its references: line k of every file. The files must have one length.

    A set whose sentences have different numbers of references (Tatoeba's) is written as files
    padded with empty lines, so an empty line is no reference, unless all of a line's are empty
    (an empty source's): scored as an empty reference, it would pull the brevity penalty down."""
    files = [read_lines(path) for path in paths]
    for path, refs in zip(paths[1:], files[1:]):
        if len(refs) != len(files[0]):
            raise TextFileError(f"{path} has {len(refs)} lines but {paths[0]} has {len(files[0])}")
    return [[ref for ref in refs if ref.strip()] or list(refs) for refs in zip(*files)]


def count_lines(path: str | Path) -> int | None:
    """How many lines ``iter_lines`` will give, counted without decoding; None when the input can
    be read only once (stdin, a pipe, ``<(cmd)``, a device): counting it would consume it."""
    if str(path) == STDIN or not _is_regular_file(path):
        return None
    count, last = 0, b"\n"
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                count += block.count(b"\n")
                last = block[-1:]
    except OSError as e:
        raise TextFileError(f"{_name(path)}: cannot read ({e.strerror or e})") from None
    return count + (last != b"\n")  # a last line without its newline is a line too


def _is_regular_file(path: str | Path) -> bool:
    """Whether ``path`` is a file on disk, which can be read twice; a missing file is left for
    ``iter_lines`` to report."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _name(path: str | Path) -> str:
    return "<stdin>" if str(path) == STDIN else str(path)


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


def write_lines_to_stdout(lines: Iterable[str]) -> None:
    """Write ``lines`` to stdout as they come. A reader that has gone (``| head``) raises
    BrokenPipeError, on which a command stops quietly (cli.run); any other failure to write, a
    full disk say, is a TextFileError."""
    try:
        for line in lines:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        raise cannot_write_stdout(e) from None


def cannot_write_stdout(error: OSError) -> TextFileError:
    """The one line for a standard output that could not be written, as for a file."""
    return TextFileError(f"standard output: cannot write ({error.strerror or error})")
