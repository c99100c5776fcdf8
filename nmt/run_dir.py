"""A run folder has one owner: the training run that holds its lock, for the life of the run.

Two runs writing into one folder would write each other's best.pt, last.pt and metrics.jsonl;
a new run started over a finished run's files would replace them without a word. So a run
takes the folder's lock before it reads or writes anything there (a second run is refused, in
one line naming the first), and a new run refuses a folder that holds another run's files
unless told to ``overwrite`` them (Joey NMT's convention); ``--resume`` continues the run that
is there. The lock is the operating system's (``filelock``), so a killed run leaves no stale lock.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from nmt.files import remove_leftovers
from nmt.learner import TrainingError

log = logging.getLogger("nmt")

LOCK, OWNER = ".lock", ".owner"  # the lock, and who holds it (the lock file itself must stay empty)
RUN_FILES = ("best.pt", "last.pt", "metrics.jsonl")  # what says a run trained here


class RunDirError(TrainingError):
    """The run folder belongs to another run."""


@contextmanager
def owning(run_dir: Path, *, resume: bool, overwrite: bool) -> Iterator[None]:
    """Hold ``run_dir`` for the life of the ``with`` block: refused if another run holds it, and
    for a new run (not ``resume``) if it holds another run's files, which ``overwrite`` deletes."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(run_dir / LOCK)
        lock.acquire(timeout=0)
    except Timeout:
        raise RunDirError(f"{run_dir} is in use by another training run ({_owner(run_dir)})") from None
    except OSError as e:
        raise RunDirError(f"cannot write checkpoints to {run_dir}: {e.strerror or e}") from None
    try:
        check_run_dir(run_dir)
        _write_owner(run_dir)
        if not resume:
            _claim(run_dir, overwrite=overwrite)
        yield
    finally:
        (run_dir / OWNER).unlink(missing_ok=True)
        lock.release()


def check_run_dir(run_dir: Path) -> None:
    """Fail before training, not at the first save, when checkpoints cannot be written; and
    clear away the half-written checkpoints of a run that was killed (under the lock: never
    those of a run still saving)."""
    try:
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"\0" * 1024)
        probe.unlink()
        for leftover in remove_leftovers(run_dir):
            log.info("removed %s, left by a save that never finished", leftover)
    except OSError as e:
        raise RunDirError(f"cannot write checkpoints to {run_dir}: {e.strerror or e}") from None


def _claim(run_dir: Path, *, overwrite: bool) -> None:
    found = run_files(run_dir)
    if not found:
        return
    if not overwrite:
        names = ", ".join(path.name for path in found[:4]) + (", ..." if len(found) > 4 else "")
        raise RunDirError(
            f"{run_dir} holds another run's files ({names}): continue that run with --resume, "
            "choose another --run-dir, or add --overwrite to delete them"
        )
    for path in found:
        path.unlink()


def run_files(run_dir: Path) -> list[Path]:
    """The files a training run writes into its folder: checkpoints and metrics."""
    candidates = [run_dir / name for name in RUN_FILES] + sorted(run_dir.glob("step-*.pt"))
    return [path for path in candidates if path.exists()]


def _write_owner(run_dir: Path) -> None:
    owner = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
    }
    (run_dir / OWNER).write_text(json.dumps(owner) + "\n", encoding="utf-8")


def _owner(run_dir: Path) -> str:
    try:
        owner = json.loads((run_dir / OWNER).read_text(encoding="utf-8"))
        return f"process {owner['pid']} on {owner['host']}, started {owner['started']}: {owner['command']}"
    except (OSError, ValueError, KeyError):
        return "its owner is not recorded"
