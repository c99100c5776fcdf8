"""Learning-rate schedules, as callbacks that set the optimizer's rate."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from nmt.callbacks import StopRule
from nmt.learner import Callback


class InverseSqrtSchedule(Callback):
    """Linear warm-up to the peak rate over ``warmup`` steps, then decay as 1/sqrt(step)."""

    def __init__(self, peak_lr: float, warmup: int):
        self.peak_lr = peak_lr
        self.warmup = max(1, warmup)

    def rate(self, step: int) -> float:
        step = max(1, step)
        return self.peak_lr * min(step / self.warmup, math.sqrt(self.warmup / step))

    def before_batch(self):
        for group in self.learner.opt.param_groups:
            group["lr"] = self.rate(self.learner.step + 1)


class PlateauSchedule(Callback):
    """Halve the learning rate when validation BLEU stops improving."""

    def __init__(self, optimizer: torch.optim.Optimizer, patience: int = 1, factor: float = 0.5):
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=factor, patience=patience
        )

    def after_validate(self):
        self.scheduler.step(self.learner.metrics["valid_bleu"])

    def state_dict(self):
        return self.scheduler.state_dict()

    def load_state_dict(self, state):
        self.scheduler.load_state_dict(state)


class DeadlineSchedule(Callback):
    """Warm up linearly over ``warmup`` steps, then decay to ``floor`` x the peak rate exactly
    when the run ends: by --max-steps or --time-budget (``StopRule.fraction_done``), or after
    ``epochs`` epochs of ``batches_per_epoch(epoch)`` batches, whichever comes first. A short run
    so spends its last minutes at a small rate instead of stopping mid-stride. ``shape`` is
    "linear" or "cosine" in the fraction of the run done.

    A run resumed with another end (``--resume --time-budget 42`` after 12 minutes) does not
    warm up or jump back up the curve: the decay starts again from the rate it had when it
    stopped, and reaches the floor at the new end. A run resumed with the same end continues
    the same curve exactly."""

    def __init__(
        self,
        peak_lr: float,
        *,
        warmup: int,
        shape: str,
        floor: float,
        epochs: int,
        batches_per_epoch: Callable[[int], int],
    ):
        self.peak_lr = peak_lr
        self.warmup = warmup
        self.shape = shape
        self.floor = floor
        self.epochs = epochs
        self.batches_per_epoch = batches_per_epoch
        self.start = (0.0, peak_lr)  # (fraction done, rate) where the decay begins; moved by an extension
        self.last_rate: float | None = None
        self._extended = False  # resumed with another end: the next step starts the decay anew

    def rate(self, step: int, fraction_done: float) -> float:
        """The rate of update ``step`` (1-based) when it ends ``fraction_done`` of the run."""
        start_done, start_rate = self.start
        done = min(max((fraction_done - start_done) / max(1.0 - start_done, 1e-12), 0.0), 1.0)
        left = 1.0 - done if self.shape == "linear" else 0.5 * (1.0 + math.cos(math.pi * done))
        warm = min(1.0, step / self.warmup) if self.warmup and start_done == 0.0 else 1.0
        low = self.floor * self.peak_lr
        return warm * (low + (start_rate - low) * left)

    def before_batch(self):
        learner = self.learner
        step = learner.step + 1
        epochs_done = (
            learner.epoch + (learner.batch_in_epoch + 1) / self.batches_per_epoch(learner.epoch)
        ) / self.epochs
        fraction = max(learner.callback(StopRule).fraction_done(step), epochs_done)
        if self._extended:
            self.start, self._extended = (fraction, self.last_rate), False
        self.last_rate = self.rate(step, fraction)
        for group in learner.opt.param_groups:
            group["lr"] = self.last_rate

    def _end(self) -> list:
        stop = self.learner.callback(StopRule)
        return [self.epochs, stop.max_steps, stop.time_budget]

    def state_dict(self):
        return {"end": self._end(), "start": list(self.start), "last_rate": self.last_rate}

    def load_state_dict(self, state):
        self.start = tuple(state.get("start", (0.0, self.peak_lr)))
        self.last_rate = state.get("last_rate")
        self._extended = self.last_rate is not None and state.get("end") not in (None, self._end())


class TeacherForcingSchedule(Callback):
    """Scheduled sampling's schedule (Bengio et al., 2015): the probability that the decoder reads
    the reference token, from 1 at the start down to ``floor``: linear over ``k`` steps,
    exponential ``k ** step``, or inverse sigmoid ``k / (k + exp(step / k))``; "constant" is
    ``floor`` throughout, the fixed-ratio teacher forcing of the PyTorch tutorial."""

    def __init__(self, shape: str, *, k: float, floor: float):
        self.shape = shape
        self.k = k
        self.floor = floor

    def probability(self, step: int) -> float:
        if self.shape == "constant":
            return self.floor
        if self.shape == "linear":
            decayed = 1.0 - step / self.k
        elif self.shape == "exponential":
            decayed = self.k**step
        else:
            decayed = self.k / (self.k + math.exp(min(step / self.k, 700.0)))
        return max(self.floor, decayed)

    def before_batch(self):
        self.learner.teacher_forcing = self.probability(self.learner.step + 1)
