"""The training loop: a Learner that fires named events, and the Callback base class.

The loop itself only does the maths of one step (forward, loss, backward, optimizer step).
Everything else (device placement, progress bars, clipping, schedules, validation,
checkpoints, early stopping, logging) is a callback reacting to these events:

    before_fit
      before_epoch
        before_batch -> after_loss -> after_backward -> after_step -> after_batch   (each batch)
      after_epoch
    after_fit

A batch is one update (nmt.data.Update): the pieces of a global batch this process computes,
forward and backward in turn, so that gradient accumulation and several processes give the
same update as one process with the whole batch, to float rounding, for a model without
dropout; with dropout each piece draws its own masks, the same update in expectation only.
``after_loss`` comes once all of them are through backward, with the loss of the whole global
batch.

Callbacks run in ``order`` (lower first) and may fire events of their own (the validation
callback fires ``after_validate``, and ``after_report`` for the scores of a run stopped between
validations). A callback stops things by raising
``CancelBatchException`` (skip the rest of this batch), ``CancelEpochException`` or
``CancelFitException`` (early stopping, time budget, a signal). A signal also sets
``interrupted``: the run is paused rather than finished, so nothing that an uninterrupted run
would not do (a final validation) may happen before it is saved.

Raising needs a decision on the host. A check on the device's numbers (is this loss finite?)
would make the host wait for a GPU at every step, so such a callback sets ``skip_update``
instead, a flag on the device: the optimizer leaves the weights and its own state as they were,
and the step still counts (``after_step`` fires; schedules move on).

Progress is kept as (``epoch``, ``batch_in_epoch``): the next batch to run. A checkpoint
taken at any event resumes from exactly there.

Under torchrun the processes run the same loop on their own pieces (nmt.distributed.Team) and
stop together: after each batch and each epoch they agree whether to stop (the leader's
decision, or a signal to any of them), how much of the time budget is used (the leader's
clock) and the learning rate (the leader's), so that every process takes the same steps.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from nmt.distributed import Team
from nmt.precision import Precision


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
    """``batches(epoch, start)`` yields that epoch's updates (nmt.data.Update) from position
    ``start`` on; ``loss_fn(logits, batch)`` returns (objective, cross-entropy), each a mean over
    the batch's target tokens: the first is minimised, the second reported (nmt.loss.Loss)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        batches: Callable[[int, int], Iterable],
        loss_fn: Callable,
        optimizer: torch.optim.Optimizer,
        callbacks: Sequence[Callback] = (),
        teacher_forcing: float = 1.0,
        team: Team | None = None,
        precision: Precision | None = None,
    ):
        self.model = model
        self.trainee = model  # what the step calls: the model, or DistributedDataParallel around it
        self.team = team or Team()  # one process alone
        self.precision = precision or Precision()  # fp32
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
        self.batch = None  # the update being trained on
        self.loss: Tensor | None = None  # the objective of that update, once computed; the latest between batches
        self.cross_entropy: Tensor | None = None  # its plain cross-entropy, which is what gets reported
        self.out_of_memory = False  # a piece of that update ran out of memory, on some process
        self.skip_update: Tensor | None = None  # set by callbacks before the step: true skips it, on the device
        self.budget_used = 0.0  # the fraction of the time budget used at the latest batch's end (StopRule's)
        self.failed = False  # the fit ended in an error: nothing may be saved from this model
        self.interrupted = False  # the fit was paused (a signal): save it as it is, to resume later
        self.published = model  # the weights validation and checkpoints use: a weight average's, if one is kept
        self.seconds_before = 0.0  # wall clock spent in the fits of earlier runs that this one resumes
        self.validating_seconds = 0.0  # wall clock this run spent validating (and saving what validation chose)
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
            self.trainee = self.team.wrap(self.model)  # after before_fit has put the model on its device
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
        self._fire_together("after_epoch")

    def _one_batch(self) -> None:
        try:
            self.fire("before_batch")
            self._forward_backward()
            self.fire("after_loss")
            self.precision.scaler.unscale_(self.opt)  # clipping and checks see the true gradients
            self.skip_update = None
            try:
                self.fire("after_backward")
                self._optimizer_step()
            finally:
                self.precision.scaler.update()
            self.step += 1
            self.fire("after_step")
        except CancelBatchException:
            pass
        finally:
            self.opt.zero_grad(set_to_none=True)
            self.batch_in_epoch += 1
        self._fire_together("after_batch")

    def _forward_backward(self) -> None:
        """Forward and backward of this process's pieces of the update, one after the other;
        the gradients add up, weighted by each piece's share of the global batch's tokens, and
        are averaged over the processes in the last piece's backward. Sets ``loss`` and
        ``cross_entropy`` (the global batch's means) and ``out_of_memory``."""
        update = self.batch
        objective = cross_entropy = 0.0
        plain = out_of_memory = False
        for i, (piece, weight) in enumerate(zip(update.pieces, update.weights)):
            last = i == len(update.pieces) - 1
            try:
                with contextlib.nullcontext() if last else self.team.accumulating(self.trainee):
                    o, ce = self._backward(piece, weight)
            except torch.OutOfMemoryError:
                out_of_memory = True
                break
            plain = o is ce  # the loss function hands back one tensor when the objective is plain cross-entropy
            objective = objective + o.detach() * weight
            cross_entropy = cross_entropy + ce.detach() * weight
        if out_of_memory and self.team.size > 1:
            self._backward(update.pieces[-1].rows(1), 0.0)  # the other processes wait for this one's gradients
        self._share_loss(objective, cross_entropy, out_of_memory, plain)

    def _backward(self, piece, weight: float) -> tuple[Tensor, Tensor]:
        with self.precision.autocast():
            logits = self.trainee(piece.src, piece.src_len, piece.trg_in, teacher_forcing=self.teacher_forcing)
            objective, cross_entropy = self.loss_fn(logits, piece)
        # DistributedDataParallel averages over the processes, and the weights already sum to one
        self.precision.scaler.scale(objective * (weight * self.team.size)).backward()
        return objective, cross_entropy

    def _optimizer_step(self) -> None:
        """The update, unless a callback flagged it in ``skip_update``. A fused optimizer takes the
        flag as its ``found_inf`` and skips on the device, so the host never waits to read it (as
        a GPU would make it, every step); other optimizers read it here. Under fp16 the gradient
        scaler passes its own flag: a non-finite loss gives non-finite gradients, which it skips."""
        skip = self.skip_update
        if skip is None or self.precision.scaler.is_enabled():
            self.precision.scaler.step(self.opt)
        elif all(group.get("fused") for group in self.opt.param_groups):
            self.opt.found_inf = skip.float()
            try:
                self.opt.step()
            finally:
                del self.opt.found_inf
        elif not skip:
            self.opt.step()

    def _share_loss(self, objective, cross_entropy, out_of_memory: bool, plain: bool) -> None:
        if self.team.size == 1:
            totals = (objective, cross_entropy)
            self.out_of_memory = out_of_memory
        else:
            device = next(self.model.parameters()).device
            mine = [torch.as_tensor(x, dtype=torch.float32, device=device) for x in (objective, cross_entropy)]
            mine.append(torch.tensor(float(out_of_memory), device=device))
            totals = self.team.sum(torch.stack(mine))
            self.out_of_memory = bool(totals[2] > 0)
        self.loss = torch.as_tensor(totals[0])
        self.cross_entropy = self.loss if plain else torch.as_tensor(totals[1])

    def _fire_together(self, event: str) -> None:
        """Fire ``event``, then stop if a callback said so; several processes stop together,
        after the same batch: when the leader decides to, or when any of them is signalled."""
        try:
            self.fire(event)
            stop = False
        except CancelFitException:
            stop = True
        if self.team.size > 1:
            leader = self.team.leader
            lr = self.opt.param_groups[0]["lr"]  # a plateau schedule changes it on the leader, which validates
            mine = [stop and leader, self.interrupted, self.budget_used if leader else 0.0, lr if leader else 0.0]
            leader_stops, interrupted, self.budget_used, lr = self.team.sum(torch.tensor(mine).double()).tolist()
            for group in self.opt.param_groups:
                group["lr"] = lr
            self.interrupted = interrupted > 0
            stop = leader_stops > 0 or self.interrupted
        if stop:
            raise CancelFitException
