"""Sequence-level knowledge distillation (Kim & Rush, 2016): a teacher's translations become the
training targets of a smaller, faster student.

A student trained on the teacher's beam-search outputs learns one consistent translation per
source instead of the spread of human ones, which a small model fits far better: the student
gets much of the teacher's quality at a fraction of its cost per sentence. ``distill`` writes
the corpus for it into a folder:

    train.SRC, train.TRG     each distinct training source once, beside the teacher's translation
                             (an empty one left out; with keep_original, every original pair after)
    valid.*, test.*          the teacher's own validation and test splits, unchanged
    distill.json             which teacher, which search, which corpus; "done" once complete

Translations are appended to ``train.TRG.partial`` a chunk at a time, so a stopped run resumes
where it stopped: whole lines already written are kept, a half-written last line is dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from nmt.corpora import Splits, group_by_source
from nmt.files import atomic_write
from nmt.search import SearchOptions
from nmt.text import CorpusError
from nmt.translator import Translator

RECORD = "distill.json"
CHUNK_LINES = 2_000  # translated between two appends to the partial file: what a stop can lose


def teacher_identity(paths: Sequence[str | Path]) -> list[dict]:
    """Each teacher's path and a hash of its bytes, so that the data says which model made it."""
    identity = []
    for path in map(Path, paths):
        digest = hashlib.sha256()
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(file.read_bytes())
        identity.append({"path": str(path), "sha256": digest.hexdigest()[:16]})
    return identity


def student_files(out_dir: Path, src: str, trg: str) -> dict[str, tuple[Path, Path]]:
    """(source file, target file) of each split in a distillation folder."""
    return {split: (out_dir / f"{split}.{src}", out_dir / f"{split}.{trg}") for split in ("train", "valid", "test")}


def distill(
    translator: Translator,
    splits: Splits,
    out_dir: Path,
    options: SearchOptions,
    *,
    teachers: list[dict],
    keep_original: bool = False,
    batch_size: int = 64,
    chunk_lines: int = CHUNK_LINES,
    progress: Callable[[int], object] | None = None,
    on_resume: Callable[[int, int], object] | None = None,
) -> dict[str, tuple[Path, Path]]:
    """Translate the distinct training sources of ``splits`` into ``out_dir`` (see the module's
    docstring), resuming a distillation already there; returns the student's files."""
    data = translator.config.data
    files = student_files(out_dir, data.src, data.trg)
    record = {
        "teachers": teachers,
        "search": asdict(options.resolved()),
        "corpus": splits.corpus,
        "corpus_fingerprint": splits.fingerprint,
        "keep_original": keep_original,
    }
    _start_or_resume(out_dir / RECORD, record)
    sources = [source for source, _ in group_by_source(splits.train)]
    partial = files["train"][1].with_name(files["train"][1].name + ".partial")
    done = _whole_lines(partial)
    if on_resume and done:
        on_resume(done, len(sources))
    with partial.open("a", encoding="utf-8") as out:
        for start in range(done, len(sources), chunk_lines):
            chunk = sources[start : start + chunk_lines]
            outputs = translator.translate(chunk, options, batch_size=batch_size)
            out.write("".join(output + "\n" for output in outputs))
            out.flush()
            if progress:
                progress(len(chunk))
    outputs = partial.read_text(encoding="utf-8").splitlines()
    # an empty translation teaches nothing, and a corpus reader would stop at its empty line
    distilled = [(source, output) for source, output in zip(sources, outputs) if output.strip()]
    pairs = distilled + (list(splits.train) if keep_original else [])
    for split, split_pairs in (("train", pairs), ("valid", splits.valid), ("test", splits.test)):
        for side, path in enumerate(files[split]):
            with atomic_write(path, "w", encoding="utf-8") as f:
                f.write("".join(pair[side] + "\n" for pair in split_pairs))
    partial.unlink()
    _write_record(
        out_dir / RECORD,
        {
            **record,
            "sentences": len(sources),
            "empty_left_out": len(sources) - len(distilled),
            "pairs": len(pairs),
            "done": True,
        },
    )
    return files


def _start_or_resume(path: Path, record: dict) -> None:
    """Write the record of a new distillation, or check that the one in place is this one."""
    if path.exists():
        before = json.loads(path.read_text(encoding="utf-8"))
        differ = [key for key in record if before.get(key) != json.loads(json.dumps(record[key]))]
        if differ:
            raise CorpusError(
                f"{path.parent} holds a distillation with other {', '.join(differ)}; give another --run-dir"
            )
        if before.get("done"):
            raise CorpusError(f"{path.parent} holds a finished distillation; give another --run-dir")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_record(path, record)


def _write_record(path: Path, record: dict) -> None:
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(record, indent=2, ensure_ascii=False) + "\n")


def _whole_lines(partial: Path) -> int:
    """The complete lines of ``partial``, after cutting a half-written last line off it."""
    if not partial.exists():
        return 0
    data = partial.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]
    if len(whole) != len(data):
        partial.write_bytes(whole)
    return whole.count(b"\n")
