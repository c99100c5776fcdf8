"""Validation during training: loss over the validation batches and greedy BLEU over its sentences."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from nmt.learner import Callback


class Validator(Callback):
    """Validation loss and greedy BLEU (sacrebleu, every reference) after every epoch, every
    ``every`` steps if set, firing ``after_validate`` for the callbacks that act on the scores;
    and a final report (``after_report``) when a step or time limit stops the run in between. It validates the model the
    Learner publishes (a weight average, if one is kept); ``translate(model, sources)``."""

    order = 20

    def __init__(
        self,
        *,
        loss_batches: Sequence,
        loss_fn: Callable,
        sources: Sequence[str],
        references: Sequence[Sequence[str]],
        translate: Callable[[nn.Module, Sequence[str]], list[str]],
        bleu: Callable[[Sequence[str], Sequence[Sequence[str]]], float],
        every: int = 0,
    ):
        self.loss_batches = loss_batches
        self.loss_fn = loss_fn
        self.sources = sources
        self.references = references
        self.translate = translate
        self.bleu = bleu
        self.every = every
        self.last_step = -1
        self.last_duration = 0.0

    def after_batch(self):
        if (
            self.every
            and self.learner.step > 0
            and self.learner.step % self.every == 0
            and self.learner.step != self.last_step
        ):
            self.validate()

    def after_epoch(self):
        self.validate()

    def after_fit(self):
        if not (self.learner.failed or self.learner.interrupted) and self.learner.step != self.last_step:
            self.report()

    def validate(self):
        """A validation of the run: the callbacks that act on scores (schedules, early stopping,
        checkpoints) hear of it through ``after_validate``."""
        with self._timed():
            self._score()
            self.last_step = self.learner.step
            self.learner.fire("after_validate")

    def report(self):
        """The scores of a run stopped by its step or time limit between two validations. Only a
        report (``after_report``: logged, and best.pt if better): a run that continues from here
        with --resume must be the one that never stopped, which did not validate here."""
        with self._timed():
            self._score()
            self.learner.fire("after_report")

    @contextlib.contextmanager
    def _timed(self):
        """Counts the time into ``learner.validating_seconds``, checkpoints written meanwhile included,
        so that training throughput can leave it out."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.learner.validating_seconds += time.monotonic() - started

    @torch.no_grad()
    def _score(self):
        started = time.monotonic()
        model = self.learner.published
        model.eval()
        device = next(model.parameters()).device
        total, tokens = 0.0, 0
        for batch in self.loss_batches:
            batch = batch.to(device)
            loss = self.loss_fn(model(batch.src, batch.src_len, batch.trg_in), batch)
            total += float(loss.cross_entropy) * batch.n_tokens
            tokens += batch.n_tokens
        hypotheses = self.translate(model, self.sources)
        valid_loss = total / max(tokens, 1)
        self.learner.metrics = {
            "valid_loss": valid_loss,
            "valid_ppl": math.exp(min(valid_loss, 50)),
            "valid_bleu": self.bleu(hypotheses, self.references),
        }
        self.learner.examples = list(zip(self.sources[:3], hypotheses[:3]))
        self.learner.model.train()
        self.last_duration = time.monotonic() - started

    def state_dict(self):
        return {"last_step": self.last_step, "last_duration": self.last_duration}

    def load_state_dict(self, state):
        self.last_step = state["last_step"]
        self.last_duration = state.get("last_duration", 0.0)  # the time budget's reserve for the final validation
