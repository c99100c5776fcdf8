"""The training loop: a Learner that fires named events, and the Callback base class.

The loop itself only does the maths of one step (forward, loss, backward, optimizer step).
Everything else (device placement, progress bars, clipping, schedules, validation,
checkpoints, early stopping, logging) is a callback reacting to these events:

    before_fit
      before_epoch
        before_batch -> after_loss -> after_backward -> after_step -> after_batch   (each batch)
      after_epoch
    after_fit

Callbacks run in ``order`` (lower first) and may fire events of their own (the validation
callback fires ``after_validate``, and ``after_report`` for the scores of a run stopped between
validations). A callback stops things by raising
``CancelBatchException`` (skip the rest of this batch), ``CancelEpochException`` or
``CancelFitException`` (early stopping, time budget, a signal). A signal also sets
``interrupted``: the run is paused rather than finished, so nothing that an uninterrupted run
would not do (a final validation) may happen before it is saved.

Progress is kept as (``epoch``, ``batch_in_epoch``): the next batch to run. A checkpoint
taken at any event resumes from exactly there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite steps in a row, out of memory, unusable data): one line for the user."""


class CancelBatchException(Exception):
    pass


class CancelEpochException(Exception):
    pass


class CancelFitException(Exception):
    pass


class Callback:
    order = 0
    learner: Learner

    def __call__(self, event: str) -> None:
        handler = getattr(self, event, None)
        if handler is not None:
            handler()

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs of this callback (plain data); most callbacks need nothing."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class Learner:
    """``batches(epoch, start)`` yields that epoch's batches from position ``start`` on;
    ``loss_fn(logits, batch)`` returns (objective, cross-entropy), each a mean over the batch's
    target tokens: the first is minimised, the second reported (nmt.loss.Loss)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        batches: Callable[[int, int], Iterable],
        loss_fn: Callable,
        optimizer: torch.optim.Optimizer,
        callbacks: Sequence[Callback] = (),
        teacher_forcing: float = 1.0,
    ):
        self.model = model
        self.batches = batches
        self.loss_fn = loss_fn
        self.opt = optimizer
        self.teacher_forcing = teacher_forcing
        self.callbacks = sorted(callbacks, key=lambda cb: cb.order)
        for cb in self.callbacks:
            cb.learner = self
        self.step = 0  # optimizer steps taken over the whole run
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # batches of the current epoch already consumed
        self.metrics: dict[str, float] = {}  # latest validation results
        self.examples: list[tuple[str, str]] = []  # (source, hypothesis) of a few sentences of the latest validation
        self.batch = None  # the batch being trained on
        self.logits: Tensor | None = None  # of that batch, after the forward pass
        self.loss: Tensor | None = None  # the objective of that batch, once computed; the latest between batches
        self.cross_entropy: Tensor | None = None  # its plain cross-entropy, which is what gets reported
        self.failed = False  # the fit ended in an error: nothing may be saved from this model
        self.interrupted = False  # the fit was paused (a signal): save it as it is, to resume later
        self.published = model  # the weights validation and checkpoints use: a weight average's, if one is kept
        self.seconds_before = 0.0  # wall clock spent in the fits of earlier runs that this one resumes
        self._started = time.monotonic()

    def fire(self, event: str) -> None:
        for cb in self.callbacks:
            cb(event)

    def callback(self, kind: type) -> Callback | None:
        return next((cb for cb in self.callbacks if isinstance(cb, kind)), None)

    @property
    def elapsed(self) -> float:
        """Seconds of wall clock spent training this run, earlier runs it resumes included."""
        return self.seconds_before + time.monotonic() - self._started

    def fit(self, epochs: int) -> None:
        self.failed = self.interrupted = False
        self._started = time.monotonic()
        try:
            self.fire("before_fit")
            while self.epoch < epochs:
                self._one_epoch()
        except CancelFitException:
            pass
        except BaseException:
            self.failed = True
            raise
        finally:
            try:
                self.fire("after_fit")
            except CancelFitException:  # e.g. early stopping after the final validation
                pass

    def _one_epoch(self) -> None:
        self.model.train()
        try:
            self.fire("before_epoch")
            for batch in self.batches(self.epoch, self.batch_in_epoch):
                self.batch = batch
                self._one_batch()
        except CancelEpochException:
            pass
        self.epoch += 1
        self.batch_in_epoch = 0
        self.fire("after_epoch")

    def _one_batch(self) -> None:
        try:
            self.fire("before_batch")
            b = self.batch
            self.logits = self.model(b.src, b.src_len, b.trg_in, teacher_forcing=self.teacher_forcing)
            self.loss, self.cross_entropy = self.loss_fn(self.logits, b)
            self.fire("after_loss")
            self.loss.backward()
            self.fire("after_backward")
            self.opt.step()
            self.step += 1
            self.fire("after_step")
        except CancelBatchException:
            pass
        finally:
            self.opt.zero_grad(set_to_none=True)
            self.batch_in_epoch += 1
        self.fire("after_batch")
