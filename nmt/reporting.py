"""What a training run tells its user: metrics.jsonl lines, the log, and a progress bar."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Sequence

import torch
from tqdm import tqdm

from nmt.learner import Callback
from nmt.tracking import Sink

log = logging.getLogger(__name__)


class MetricsLog(Callback):
    """One record per validation, and every ``every`` steps one for training, each with the step,
    the epoch and the minutes trained, handed to every sink (nmt.tracking: metrics.jsonl,
    TensorBoard, W&B); the validation's scores and examples also go to the log. A training
    record's ``tokens_per_s`` leaves out the time spent validating (and saving checkpoints then):
    it is the throughput of training itself, comparable between runs that validate at different
    intervals."""

    order = 50

    def __init__(self, sinks: Sequence[Sink], every: int = 100):
        self.sinks = sinks
        self.every = every
        self._reset()
        self.since, self.validating_since = time.monotonic(), 0.0  # the window's start, set again at the fit's

    def _reset(self):
        # Sums stay on the device until a line is written: reading them every step would make the
        # host wait for a GPU every step. ``counted`` are the tokens of the updates not skipped.
        self.loss_sum, self.objective_sum, self.counted = 0.0, None, 0.0
        self.tokens = 0

    def _start_window(self):
        self.since, self.validating_since = time.monotonic(), self.learner.validating_seconds

    def before_fit(self):
        self._start_window()

    def _when(self) -> dict:
        return {"step": self.learner.step, "epoch": self.learner.epoch, "minutes": self.learner.elapsed / 60}

    def _write(self, record: dict) -> None:
        for sink in self.sinks:
            sink.write(record)

    def after_step(self):
        learner, n = self.learner, self.learner.batch.n_tokens
        skip = learner.skip_update if learner.skip_update is not None else torch.tensor(False)
        self.loss_sum = self.loss_sum + torch.where(skip, 0.0, learner.cross_entropy.detach() * n)  # NaN stays out
        if learner.loss is not learner.cross_entropy:  # label smoothing: the objective is logged beside
            objective = torch.where(skip, 0.0, learner.loss.detach() * n)
            self.objective_sum = objective if self.objective_sum is None else self.objective_sum + objective
        self.counted = self.counted + torch.where(skip, 0, n)
        self.tokens += n
        if learner.step % self.every == 0:
            self._write_training()

    def _write_training(self):
        seconds = time.monotonic() - self.since - (self.learner.validating_seconds - self.validating_since)
        counted, loss_sum, objective_sum = self._sums()
        losses = {"train_loss": loss_sum / counted} if counted else {}  # plain cross-entropy, as valid_loss
        if counted and objective_sum is not None:  # the label-smoothed objective, under its own name
            losses["train_smoothed_loss"] = objective_sum / counted
        self._write(
            {
                **self._when(),
                **losses,
                "tokens_per_s": self.tokens / max(seconds, 1e-9),
                "lr": self.learner.opt.param_groups[0]["lr"],
            }
        )
        self._reset()
        self._start_window()

    def _sums(self) -> tuple[float, float, float | None]:
        """(counted, loss_sum, objective_sum), read from the device: the host waits for it here."""
        objective = None if self.objective_sum is None else float(self.objective_sum)
        return float(self.counted), float(self.loss_sum), objective

    def state_dict(self):  # the steps since the last line written
        counted, loss_sum, objective = self._sums()
        return {"loss_sum": loss_sum, "objective_sum": objective, "tokens": self.tokens, "counted": counted}

    def load_state_dict(self, state):
        self.loss_sum, self.tokens = state["loss_sum"], state["tokens"]
        self.objective_sum = state.get("objective_sum")
        self.counted = state.get("counted", self.tokens)

    def after_validate(self):
        self._validation()

    def after_report(self):
        self._validation(report=True)

    def _validation(self, report: bool = False):
        m = self.learner.metrics
        self._write({**self._when(), **m, **({"report": True} if report else {})})
        log.info(
            "step %d epoch %d: valid loss %.3f ppl %.2f BLEU %.2f%s",
            self.learner.step,
            self.learner.epoch,
            m["valid_loss"],
            m["valid_ppl"],
            m["valid_bleu"],
            " (final report)" if report else "",
        )
        for source, hypothesis in self.learner.examples:
            log.info("  %s -> %s", source, hypothesis)
        for sink in self.sinks:
            sink.examples(self.learner.step, self.learner.examples)

    def after_fit(self):
        for sink in self.sinks:
            sink.close()


class ProgressBar(Callback):
    """A tqdm bar per epoch on stderr: loss, perplexity, target tokens/s, learning rate."""

    order = 60

    def __init__(self, batches_per_epoch: Callable[[int], int], every: int = 10):
        self.batches_per_epoch = batches_per_epoch
        self.every = every  # batches between readings of the loss, each a wait for the device
        self.bar = None

    def before_epoch(self):
        learner = self.learner
        self.bar = tqdm(
            total=self.batches_per_epoch(learner.epoch),
            initial=learner.batch_in_epoch,
            desc=f"epoch {learner.epoch + 1}",
            file=sys.stderr,
            mininterval=1.0,
            dynamic_ncols=True,
            leave=False,
        )
        self.tokens, self.started = 0, time.monotonic()

    def after_batch(self):
        if self.bar is None:
            return
        self.tokens += self.learner.batch.n_tokens
        self.bar.update(1)
        if self.bar.n % self.every == 0 and self.learner.cross_entropy is not None:
            loss = self.learner.cross_entropy.item()
            self.bar.set_postfix(
                loss=f"{loss:.3f}",
                ppl=f"{math.exp(min(loss, 50)):.1f}",
                tok_s=f"{self.tokens / max(time.monotonic() - self.started, 1e-9):.0f}",
                lr=f"{self.learner.opt.param_groups[0]['lr']:.2e}",
                refresh=False,
            )

    def after_epoch(self):
        self._close()

    def after_fit(self):
        self._close()

    def _close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
