"""Weight averaging: an exponential moving average kept during training, and the average of
saved checkpoints after it. Both smooth out the noise of the last updates, which is what a
short run ends on."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nmt.checkpoint import CheckpointError, load_checkpoint
from nmt.learner import Callback


class ExponentialMovingAverage(Callback):
    """Keeps ``averaged = decay * averaged + (1 - decay) * weights`` after every update, and makes
    the averaged model the one the Learner publishes: validation, best.pt, last.pt's "model" and
    so translation use it. The trained weights travel in this callback's state, for resuming.

    Built from the model as it is when training starts: a fresh model, or one restored from a
    last.pt, whose "model" holds the average (the trained weights come back in load_state_dict).
    """

    order = -10  # before anything that validates or saves sees learner.published

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.averaged = copy.deepcopy(model).eval()
        for p in self.averaged.parameters():
            p.requires_grad_(False)

    def before_fit(self):
        self.learner.published = self.averaged

    @torch.no_grad()
    def after_step(self):
        for mean, p in zip(self.averaged.parameters(), self.learner.model.parameters()):
            mean.lerp_(p, 1.0 - self.decay)
        for mean, b in zip(self.averaged.buffers(), self.learner.model.buffers()):
            mean.copy_(b)

    def state_dict(self) -> dict[str, Any]:
        return {"trained": self.learner.model.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learner.model.load_state_dict(state["trained"])


def average_checkpoints(paths: Sequence[str | Path]) -> dict[str, Any]:
    """A model checkpoint whose weights are the mean of those in ``paths``, with the first one's
    config and tokenizers. Checkpoints of different models or vocabularies are refused."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    first = load_checkpoint(paths[0])
    total = {name: tensor.double() for name, tensor in first["model"].items()}
    for path in paths[1:]:
        ckpt = load_checkpoint(path)
        if ckpt.get("tokenizers") != first.get("tokenizers"):
            raise CheckpointError(f"{path}: its vocabularies differ from those of {paths[0]}: cannot average")
        if ckpt["config"]["model"] != first["config"]["model"] or ckpt["model"].keys() != total.keys():
            raise CheckpointError(f"{path}: a different model from {paths[0]}: cannot average")
        for name, tensor in ckpt["model"].items():
            total[name] += tensor.double()
    dtypes = {name: tensor.dtype for name, tensor in first["model"].items()}
    averaged = {name: (tensor / len(paths)).to(dtypes[name]) for name, tensor in total.items()}
    return {
        "config": first["config"],
        "tokenizers": first["tokenizers"],
        "corpus": first.get("corpus"),
        **({"output_ids": first["output_ids"]} if "output_ids" in first else {}),
        "model": averaged,
        "averaged_from": [str(p) for p in paths],
    }
