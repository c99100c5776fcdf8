"""Files written whole or not at all: checkpoints, translated files and downloads share this."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

TMP_INFIX = ".tmp-"  # .NAME.tmp-PID: a write in progress, or one a killed process left behind


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb", **open_kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; when the block ends normally it is
    flushed, synced and renamed to ``path``. On any error (or Ctrl-C) ``path`` is left as it
    was and the temporary file is removed; the error propagates."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TMP_INFIX}{os.getpid()}")
    try:
        with open(tmp, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def remove_leftovers(folder: str | Path) -> list[Path]:
    """Delete the temporary files of writes that a killed process never finished (a run folder
    belongs to one training at a time, so none of them is still being written)."""
    leftovers = sorted(Path(folder).glob(f".*{TMP_INFIX}*"))
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX only; a no-op where directories can't be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
