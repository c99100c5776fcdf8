"""Batches searched side by side on the CPU: worker processes, each searching its own batches on
one CPU thread, the results given back in the order of the batches.

Why processes: a decoder step of a small model is hundreds of small operators, and for each of
them Python holds its interpreter lock while it reads the call; only the arithmetic runs without
it. So one search split over two threads gains little on small matrices, and two searches in
threads of one process mostly wait for each other's Python; processes each have an interpreter
of their own (docs/experiments.rst, "Batches searched side by side").

The workers are forked from the process that holds the model when a call begins, so they start at
once with the model as it is then, its memory shared page by page with the parent (a search never
writes it); only a batch's line numbers go out, and its translations come back. Workers are forked
and asked to end with their parent (prctl), as Linux allows; elsewhere, and on a GPU, one process
searches.

    for translations in in_order(translate_batch, batches, workers=workers_for(device, len(batches))):
        ...
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

import torch

Item = TypeVar("Item")
Result = TypeVar("Result")

_work: Callable | None = None  # in a worker: the function it was forked to run
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent ends


def workers_for(device: torch.device, batches: int, workers: int | None = None) -> int:
    """How many processes search the ``batches``: ``workers`` if given, else one per CPU thread
    torch would use; never more than there are batches, and one on a GPU (whose stream runs one
    batch's operators at a time) or where processes are not forked."""
    if device.type != "cpu" or not sys.platform.startswith("linux"):
        return 1
    wanted = torch.get_num_threads() if workers is None else workers
    return max(1, min(wanted, batches))


def in_order(fn: Callable[[Item], Result], items: Sequence[Item], *, workers: int) -> Iterator[Result]:
    """``fn(item)`` of every item, in order. With ``workers`` above one, that many forked processes
    run it, one thread each; ``fn`` itself is not pickled (a forked worker has it already), but
    the items and results are. An error in a worker is raised here; stopping early cancels the
    items not started."""
    if workers <= 1:
        yield from map(fn, items)
        return
    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_adopt, initargs=(fn, os.getpid()))
    try:
        yield from pool.map(_run, items)
    finally:
        pool.shutdown(cancel_futures=True)


def _adopt(fn: Callable, parent: int) -> None:
    global _work
    _work = fn
    # One thread each: workers of more threads would each start OpenMP's threads, which GNU's
    # runtime cannot do in a child forked after the parent used them (GCC bug 60035).
    torch.set_num_threads(1)
    # Ctrl-C reaches every process of the terminal's group: the parent answers it (it stops handing
    # out batches and lets the workers go), so a worker ignores it. A parent killed outright
    # takes its workers with it, which would otherwise wait for batches forever.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the command's, which interrupts the parent's writing
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent ended before prctl took effect
        os._exit(1)


def _run(item):
    return _work(item)
