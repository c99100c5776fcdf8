"""Batches searched side by side on the CPU: several workers, each searching its own batch on its
share of torch's CPU threads, as Marian's ``--cpu-threads`` and CTranslate2's ``inter_threads`` do.

Why: a decoder step of a small model is hundreds of small operators around a few small matrix
products. Split across threads, each of them gains little, and the Python between them runs on
one thread anyway. Two searches on one thread each keep two cores busy instead: torch lets go of
Python's lock inside an operator, so one search's arithmetic runs while the other's Python does
(docs/experiments.rst, "Batches searched side by side").

A batch's translation does not depend on the worker that searches it, and ``in_order`` gives the
results in the order of the batches.

    for result in in_order(search_one_batch, batches, workers=workers_for(device, len(batches))):
        ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

Item = TypeVar("Item")
Result = TypeVar("Result")


def workers_for(device: torch.device, batches: int, workers: int | None = None) -> int:
    """How many batches to search at once: ``workers`` if given, else one per CPU thread torch
    would use (each then searches on one thread); never more than there are batches, and one
    on a GPU, whose stream runs one batch's operators at a time."""
    if device.type != "cpu":
        return 1
    wanted = torch.get_num_threads() if workers is None else workers
    return max(1, min(wanted, batches))


def in_order(fn: Callable[[Item], Result], items: Sequence[Item], *, workers: int) -> Iterator[Result]:
    """``fn(item)`` of every item, in order. With ``workers`` above one, that many run at once in
    threads, each on ``torch.get_num_threads() // workers`` CPU threads (at least one). ``fn``
    enters in its own thread whatever thread-local mode it needs (``torch.inference_mode``,
    autocast). Stopping early cancels the items not started."""
    if workers <= 1:
        yield from map(fn, items)
        return
    threads = torch.get_num_threads()
    share = max(1, threads // workers)

    def run(item: Item) -> Result:
        torch.set_num_threads(share)  # the OpenMP thread count is each thread's own
        return fn(item)

    pool = ThreadPoolExecutor(workers, thread_name_prefix="nmt-search")
    try:
        yield from pool.map(run, items)
    finally:
        pool.shutdown(cancel_futures=True)
        torch.set_num_threads(threads)  # the workers' calls also set torch's process-wide count
