"""What a training run tells its user: metrics.jsonl lines, the log, and a progress bar."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from nmt.learner import Callback

log = logging.getLogger(__name__)


class MetricsLog(Callback):
    """One JSON line per validation, and every ``every`` steps one for training, in metrics.jsonl."""

    order = 50

    def __init__(self, path: Path, every: int = 100):
        self.path = Path(path)
        self.every = every
        self.loss_sum, self.tokens, self.since = 0.0, 0, time.monotonic()

    def _write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def after_loss(self):
        self.loss_sum += self.learner.loss.item() * self.learner.batch.n_tokens
        self.tokens += self.learner.batch.n_tokens

    def after_step(self):
        if self.learner.step % self.every == 0 and self.tokens:
            seconds = time.monotonic() - self.since
            self._write(
                {
                    "step": self.learner.step,
                    "epoch": self.learner.epoch,
                    "train_loss": self.loss_sum / self.tokens,
                    "tokens_per_s": self.tokens / max(seconds, 1e-9),
                    "lr": self.learner.opt.param_groups[0]["lr"],
                }
            )
            self.loss_sum, self.tokens, self.since = 0.0, 0, time.monotonic()

    def state_dict(self):
        return {"loss_sum": self.loss_sum, "tokens": self.tokens}  # the steps since the last line written

    def load_state_dict(self, state):
        self.loss_sum, self.tokens = state["loss_sum"], state["tokens"]

    def after_validate(self):
        m = self.learner.metrics
        self._write({"step": self.learner.step, "epoch": self.learner.epoch, **m})
        log.info(
            "step %d epoch %d: valid loss %.3f ppl %.2f BLEU %.2f",
            self.learner.step,
            self.learner.epoch,
            m["valid_loss"],
            m["valid_ppl"],
            m["valid_bleu"],
        )
        for source, hypothesis in self.learner.examples:
            log.info("  %s -> %s", source, hypothesis)


class ProgressBar(Callback):
    """A tqdm bar per epoch on stderr: loss, perplexity, target tokens/s, learning rate."""

    order = 60

    def __init__(self, batches_per_epoch: Callable[[int], int]):
        self.batches_per_epoch = batches_per_epoch
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
        if self.bar.n % 10 == 0 and self.learner.loss is not None:
            loss = self.learner.loss.item()
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
