"""Corpus files -> normalised sentence pairs, in file order, each side in its column's order.

    PATH.zip              a manythings.org archive; its deu.txt (fra.txt ...) is read without extracting
    PATH                  a tab file: first<TAB>second[<TAB>attribution] (manythings.org's deu.txt
                          lists English first; a Tatoeba-Challenge-style file src<TAB>trg)
    (PATH_1, PATH_2)      two parallel plain files, one sentence a line

Which language each side holds is nmt.corpora's business (``column_languages``), not a reader's.

Bad input raises ``CorpusError`` with one line naming the file and the 1-based line number.
With ``skip_bad_lines`` the bad lines are skipped instead, and one warning says how many.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nmt.text import CorpusError, Pair, normalize

log = logging.getLogger(__name__)

Source = Path | tuple[Path, Path]  # one tab/zip file, or two parallel files


@dataclass
class _BadLines:
    """What a reader does with a bad line: raise, or (skip_bad_lines) count it and go on."""

    source: str
    skip: bool
    count: int = 0
    first: int = 0

    def reject(self, file: str, line_no: int, reason: str) -> None:
        if not self.skip:
            raise CorpusError(f"{file} line {line_no}: {reason}")
        self.count += 1
        self.first = self.first or line_no

    def report(self) -> int:
        if self.count:
            log.warning("skipped %d bad lines in %s (first at line %d)", self.count, self.source, self.first)
        return self.count


def read_corpus(source: Source | str, *, skip_bad_lines: bool = False) -> list[Pair]:
    """Pairs from a .zip archive, a tab file, or a tuple of two parallel files' paths."""
    return read_source(source, skip_bad_lines=skip_bad_lines)[0]


def read_source(source: Source | str, *, skip_bad_lines: bool = False) -> tuple[list[Pair], int]:
    """(pairs, number of bad lines skipped) from any readable source."""
    if isinstance(source, tuple):
        return _read_parallel(Path(source[0]), Path(source[1]), skip_bad_lines)
    path = Path(source)
    if path.suffix.lower() == ".zip":
        return _read_zip(path, skip_bad_lines)
    return _read_tab(path, skip_bad_lines)


def _read_tab(path: Path, skip: bool) -> tuple[list[Pair], int]:
    return _tab_pairs(_read_bytes(path), str(path), skip)


def _read_zip(path: Path, skip: bool) -> tuple[list[Pair], int]:
    try:
        with zipfile.ZipFile(path) as archive:
            member = _sentence_member(archive, path)
            data = archive.read(member)
    except (zipfile.BadZipFile, OSError) as err:
        raise CorpusError(f"{path}: cannot read the archive ({err})") from err
    return _tab_pairs(data, f"{path}:{member}", skip)


def _sentence_member(archive: zipfile.ZipFile, path: Path) -> str:
    """The archive's one *.txt member that is not the _about.txt licence (it may sit in a folder)."""
    names = [name for name in archive.namelist() if name.endswith(".txt") and PurePosixPath(name).name != "_about.txt"]
    if len(names) != 1:
        raise CorpusError(f"{path}: expected one *.txt sentence file besides _about.txt, found {names}")
    return names[0]


def _tab_pairs(data: bytes, name: str, skip: bool) -> tuple[list[Pair], int]:
    lines = data.splitlines()
    if not lines:
        raise CorpusError(f"{name}: empty file, no sentence pairs")
    bad = _BadLines(name, skip)
    pairs = []
    for line_no, raw in enumerate(lines, start=1):
        pair = _tab_line(raw, name, line_no, bad)
        if pair:
            pairs.append(pair)
    return _checked(pairs, name, bad)


def _tab_line(raw: bytes, name: str, line_no: int, bad: _BadLines) -> Pair | None:
    line = _decode(raw, name, line_no, bad)
    if line is None:
        return None
    columns = line.split("\t")
    if len(columns) not in (2, 3):
        bad.reject(name, line_no, _column_problem(len(columns)))
        return None
    return _pair(columns[0], columns[1], where=[(name, line_no)] * 2, bad=bad)


def _column_problem(count: int) -> str:
    if count == 1:
        return "no tab between the two sentences"
    return f"{count} tab-separated columns, expected two sentences and an optional attribution"


def _read_parallel(first: Path, second: Path, skip: bool) -> tuple[list[Pair], int]:
    first_lines = _read_bytes(first).splitlines()
    second_lines = _read_bytes(second).splitlines()
    if len(first_lines) != len(second_lines):
        short, long = sorted(((first, first_lines), (second, second_lines)), key=lambda f: len(f[1]))
        raise CorpusError(
            f"parallel files differ in length: {first} has {len(first_lines)} lines, {second} has "
            f"{len(second_lines)}; {long[0]} line {len(short[1]) + 1} has no partner in {short[0]}"
        )
    for path, lines in ((first, first_lines), (second, second_lines)):
        if not lines:
            raise CorpusError(f"{path}: empty file, no sentences")
    names = f"{first} + {second}"
    bad = _BadLines(names, skip)
    pairs = []
    for line_no, raws in enumerate(zip(first_lines, second_lines), start=1):
        pair = _parallel_line(raws, where=[(str(first), line_no), (str(second), line_no)], bad=bad)
        if pair:
            pairs.append(pair)
    return _checked(pairs, names, bad)


def _parallel_line(raws: tuple[bytes, bytes], *, where: list[tuple[str, int]], bad: _BadLines) -> Pair | None:
    """Line k of both files as a pair; a bad line on either side rejects (and counts) it once."""
    sides = []
    for raw, (file, line_no) in zip(raws, where):
        side = _decode(raw, file, line_no, bad)
        if side is None:
            return None
        sides.append(side)
    return _pair(sides[0], sides[1], where=where, bad=bad)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise CorpusError(f"{path}: cannot read ({err.strerror})") from err


def _decode(raw: bytes, name: str, line_no: int, bad: _BadLines) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        bad.reject(name, line_no, f"not UTF-8 (byte {raw[err.start]:#04x} at byte {err.start + 1} of the line)")
        return None


def _pair(first: str, second: str, *, where: list[tuple[str, int]], bad: _BadLines) -> Pair | None:
    """The normalised pair, or None (after ``bad.reject``) when a side is empty.
    ``where`` holds (file, line number) of the first and of the second side."""
    pair = (normalize(first), normalize(second))
    for side, column, (file, line_no) in zip(pair, ("first", "second"), where):
        if not side:
            one_file = where[0] == where[1]
            bad.reject(file, line_no, f"empty sentence in the {column} column" if one_file else "empty line")
            return None
    return pair


def _checked(pairs: list[Pair], name: str, bad: _BadLines) -> tuple[list[Pair], int]:
    skipped = bad.report()
    if not pairs:
        raise CorpusError(f"{name}: no usable sentence pairs ({skipped} bad lines skipped)")
    return pairs, skipped
