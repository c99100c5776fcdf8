"""Learning-rate schedules, as callbacks that set the optimizer's rate."""

from __future__ import annotations

import math

import torch

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
