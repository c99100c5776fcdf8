"""The batcher: sentences from every request wait in one queue, and one worker thread translates
them in batches, handing each result back to the request that asked.

A server that searched each request on its own would run many batches of one sentence; search
costs nearly the same for a batch of 32 as for one, so batching across requests is where a
server's throughput comes from. The worker takes the oldest waiting sentence and every other
waiting sentence that can share its search (same model, same options), up to ``batch_size``,
waiting at most ``max_wait`` for more when the queue is short; ``Translator`` sorts them by
length. Because greedy and beam search are batch-invariant in fp32, a sentence's translation
does not depend on what it was batched with.

The batcher knows nothing of HTTP: ``submit`` gives one ``concurrent.futures.Future`` per
sentence, which a server awaits (``asyncio.wrap_future``) and a test reads with ``result()``. A
future cancelled before its batch starts costs no search.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from nmt.search import SearchOptions
from nmt.translator import Translation, Translator


class QueueFull(RuntimeError):
    """More sentences than ``max_queue`` would be waiting: come back later."""


class Closed(RuntimeError):
    """The batcher is shutting down and takes no more work."""


@dataclass(frozen=True)
class Job:
    """What a sentence needs to share a batch with another: the same model and the same search."""

    model: Hashable
    options: SearchOptions
    attention: bool = False


@dataclass
class _Waiting:
    job: Job
    line: str
    future: Future = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    """One queue and one worker over ``translators`` (a name for each model -> its Translator).

    ``on_batch(size, seconds)`` is called after each batch, for metrics.
    """

    def __init__(
        self,
        translators: Mapping[Hashable, Translator],
        *,
        batch_size: int = 64,
        max_wait: float = 0.005,
        max_queue: int = 1024,
        on_batch: Callable[[int, float], None] | None = None,
    ):
        if batch_size < 1 or max_queue < 1 or max_wait < 0:
            raise ValueError("the batch size and the queue must hold at least one sentence, and the wait be >= 0")
        self.translators = dict(translators)
        self.batch_size, self.max_wait, self.max_queue = batch_size, max_wait, max_queue
        self.on_batch = on_batch
        self._queue: deque[_Waiting] = deque()
        self._changed = threading.Condition()
        self._closing = False
        self._worker = threading.Thread(target=self._work, name="nmt-batcher", daemon=True)
        self._worker.start()

    @property
    def queued(self) -> int:
        """Sentences waiting for a batch."""
        return len(self._queue)

    @property
    def running(self) -> bool:
        """Whether the batcher takes work: started, and not closing."""
        return self._worker.is_alive() and not self._closing

    def submit(self, job: Job, lines: Sequence[str]) -> list[Future]:
        """One future per line, each resolving to its Translation. All or none of ``lines`` enter
        the queue: QueueFull when they would take it past ``max_queue``, Closed when shutting down."""
        if job.model not in self.translators:
            raise KeyError(job.model)
        waiting = [_Waiting(job, line) for line in lines]
        with self._changed:
            if self._closing:
                raise Closed("the server is shutting down")
            if len(self._queue) + len(waiting) > self.max_queue:
                raise QueueFull(f"{len(self._queue)} sentences are waiting; the queue holds {self.max_queue}")
            self._queue.extend(waiting)
            self._changed.notify()
        return [w.future for w in waiting]

    def translate(self, job: Job, lines: Sequence[str]) -> list[Translation]:
        """``submit`` and wait: for callers in a thread of their own, and tests."""
        return [future.result() for future in self.submit(job, lines)]

    def close(self, timeout: float | None = None) -> bool:
        """Take no more work, finish what is queued, and stop the worker; whether it stopped
        within ``timeout`` seconds. What is still queued then is cancelled."""
        with self._changed:
            self._closing = True
            self._changed.notify()
        self._worker.join(timeout)
        with self._changed:
            for waiting in self._queue:
                waiting.future.cancel()
            self._queue.clear()
        return not self._worker.is_alive()

    def _work(self) -> None:
        while batch := self._next_batch():
            self._translate(batch)

    def _next_batch(self) -> list[_Waiting]:
        """The next batch to translate, once there is one; empty when closed and drained."""
        with self._changed:
            while True:
                while not self._queue:
                    if self._closing:
                        return []
                    self._changed.wait()
                # A short queue waits for company, counted from when its oldest sentence came:
                # under load the queue fills while a batch is searched, and nothing waits.
                deadline = self._queue[0].arrived + self.max_wait
                while len(self._queue) < self.batch_size and not self._closing:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)
                batch = self._take()
                if batch:
                    return batch

    def _take(self) -> list[_Waiting]:
        """The oldest waiting sentence's job: up to ``batch_size`` of its sentences, in order of
        arrival; the others keep their places. Sentences whose request gave up are dropped."""
        job, batch, others = self._queue[0].job, [], deque()
        while self._queue:
            waiting = self._queue.popleft()
            if len(batch) < self.batch_size and waiting.job == job:
                if waiting.future.set_running_or_notify_cancel():  # False: cancelled, nothing to do
                    batch.append(waiting)
            else:
                others.append(waiting)
        self._queue = others
        return batch

    def _translate(self, batch: list[_Waiting]) -> None:
        job = batch[0].job
        started = time.perf_counter()
        try:
            translations = self.translators[job.model].translate_n_best(
                [waiting.line for waiting in batch], job.options, batch_size=self.batch_size, attention=job.attention
            )
        except Exception as error:  # noqa: BLE001 - the batch's requests fail; the worker goes on
            for waiting in batch:
                waiting.future.set_exception(error)
            return
        for waiting, translation in zip(batch, translations):
            waiting.future.set_result(translation)
        if self.on_batch is not None:
            self.on_batch(len(batch), time.perf_counter() - started)
