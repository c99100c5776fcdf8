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
    "linear" or "cosine" in the fraction of the run done."""

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

    def rate(self, step: int, fraction_done: float) -> float:
        """The rate of update ``step`` (1-based) when it ends ``fraction_done`` of the run."""
        done = min(max(fraction_done, 0.0), 1.0)
        left = 1.0 - done if self.shape == "linear" else 0.5 * (1.0 + math.cos(math.pi * done))
        warm = min(1.0, step / self.warmup) if self.warmup else 1.0
        return self.peak_lr * warm * (self.floor + (1.0 - self.floor) * left)

    def before_batch(self):
        learner = self.learner
        step = learner.step + 1
        epochs_done = (
            learner.epoch + (learner.batch_in_epoch + 1) / self.batches_per_epoch(learner.epoch)
        ) / self.epochs
        rate = self.rate(step, max(learner.callback(StopRule).fraction_done(step), epochs_done))
        for group in learner.opt.param_groups:
            group["lr"] = rate


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
