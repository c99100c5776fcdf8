"""The callbacks train_nmt.py puts on the Learner: side effects only, one job each."""
from __future__ import annotations

import json
import logging
import math
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm import tqdm

from nmt.checkpoint import save_checkpoint
from nmt.learner import Callback, CancelBatchException, CancelFitException

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    pass


class DeviceCallback(Callback):
    order = -20

    def __init__(self, device: torch.device):
        self.device = device

    def before_fit(self):
        self.learner.model.to(self.device)

    def before_batch(self):
        self.learner.batch = self.learner.batch.to(self.device)


class StopOnSignal(Callback):
    """SIGINT / SIGTERM let the current step finish, then end the fit; the checkpoint callback
    then writes last.pt, and train_nmt.py exits non-zero saying how to resume."""

    order = 70  # last: the step's own validation and checkpoint happen first, as they would uninterrupted
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def before_fit(self):
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._note)

    def _note(self, signum, frame):
        if self.received is not None:  # a second signal means: stop now
            raise KeyboardInterrupt
        self.received = signum

    def after_batch(self):
        if self.received is not None:
            self.learner.interrupted = True
            raise CancelFitException

    def after_fit(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class SkipNonFiniteLoss(Callback):
    """A NaN/inf loss, or gradient (an overflow in the backward pass), skips its step before
    the optimizer sees it; ``patience`` such steps in a row stop training with an error (the
    checkpoints on disk are the last good ones: nothing is saved from a broken model)."""

    order = -5  # before clipping, which would spread one NaN over every gradient

    def __init__(self, patience: int = 10):
        self.patience = patience
        self.in_a_row = 0
        self.skipped = 0

    def after_loss(self):
        if not torch.isfinite(self.learner.loss):
            self._skip("loss")

    def after_backward(self):
        grads = [p.grad for p in self.learner.model.parameters() if p.grad is not None]
        if not torch.stack([torch.isfinite(g).all() for g in grads]).all():
            self._skip("gradient")

    def after_step(self):
        self.in_a_row = 0

    def _skip(self, what: str):
        self.in_a_row += 1
        self.skipped += 1
        log.warning("step %d: non-finite %s, step skipped (%d in a row)", self.learner.step + 1, what, self.in_a_row)
        if self.in_a_row >= self.patience:
            raise TrainingError(f"{self.in_a_row} steps in a row with a non-finite loss or gradient: stopping; "
                                f"lower --lr or check the data")
        raise CancelBatchException

    def state_dict(self):
        return {"skipped": self.skipped, "in_a_row": self.in_a_row}

    def load_state_dict(self, state):
        self.skipped, self.in_a_row = state["skipped"], state["in_a_row"]


class GradientClip(Callback):
    def __init__(self, max_norm: float):
        self.max_norm = max_norm

    def after_backward(self):
        if self.max_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.learner.model.parameters(), self.max_norm)


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
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=factor, patience=patience)

    def after_validate(self):
        self.scheduler.step(self.learner.metrics["valid_bleu"])

    def state_dict(self):
        return self.scheduler.state_dict()

    def load_state_dict(self, state):
        self.scheduler.load_state_dict(state)


class StopRule(Callback):
    """End the fit at ``max_steps`` or when the wall-clock ``time_budget`` (seconds) would be
    overrun; the budget counts validation too, so the time the last validation took is kept
    in reserve for the final one."""

    order = 10

    def __init__(self, *, max_steps: int = 0, time_budget: float = 0.0):
        self.max_steps = max_steps
        self.time_budget = time_budget
        self.elapsed_before = 0.0  # time spent by earlier runs of a resumed training
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def before_fit(self):
        self.started = time.monotonic()

    def after_batch(self):
        if self.max_steps and self.learner.step >= self.max_steps:
            raise CancelFitException
        validator = self.learner.callback(Validator)
        reserve = validator.last_duration if validator else 0.0
        if self.time_budget and self.elapsed + reserve >= self.time_budget:
            raise CancelFitException

    def state_dict(self):
        return {"elapsed": self.elapsed}

    def load_state_dict(self, state):
        self.elapsed_before = state["elapsed"]


class Validator(Callback):
    """Validation loss and greedy BLEU (sacrebleu, every reference) after every epoch, every
    ``every`` steps if set, and once at the end for what was trained since; then fires
    ``after_validate`` for the callbacks that act on the scores."""

    order = 20

    def __init__(
        self,
        *,
        loss_batches: Sequence,
        loss_fn: Callable,
        sources: Sequence[str],
        references: Sequence[Sequence[str]],
        translate: Callable[[Sequence[str]], list[str]],
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
        if self.every and self.learner.step > 0 and self.learner.step % self.every == 0 and self.learner.step != self.last_step:
            self.validate()

    def after_epoch(self):
        self.validate()

    def after_fit(self):
        if not (self.learner.failed or self.learner.interrupted) and self.learner.step != self.last_step:
            self.validate()

    @torch.no_grad()
    def validate(self):
        started = time.monotonic()
        model = self.learner.model
        model.eval()
        device = next(model.parameters()).device
        total, tokens = 0.0, 0
        for batch in self.loss_batches:
            batch = batch.to(device)
            total += float(self.loss_fn(model(batch.src, batch.src_len, batch.trg_in), batch)) * batch.n_tokens
            tokens += batch.n_tokens
        hypotheses = self.translate(self.sources)
        valid_loss = total / max(tokens, 1)
        self.learner.metrics = {
            "valid_loss": valid_loss,
            "valid_ppl": math.exp(min(valid_loss, 50)),
            "valid_bleu": self.bleu(hypotheses, self.references),
        }
        self.learner.examples = list(zip(self.sources[:3], hypotheses[:3]))
        model.train()
        self.last_step = self.learner.step
        self.last_duration = time.monotonic() - started
        self.learner.fire("after_validate")

    def state_dict(self):
        return {"last_step": self.last_step}

    def load_state_dict(self, state):
        self.last_step = state["last_step"]


class EarlyStopping(Callback):
    """Stop when validation BLEU has not improved for ``patience`` validations.

    The count is updated as each validation is announced, but the fit ends only once every
    callback has seen that validation (it is logged, and checkpointed with this count)."""

    order = 25  # after the validator, before the checkpointer saves the count

    def __init__(self, patience: int):
        self.patience = patience
        self.best = -math.inf
        self.bad = 0

    def after_validate(self):
        bleu = self.learner.metrics["valid_bleu"]
        if bleu > self.best:
            self.best, self.bad = bleu, 0
        else:
            self.bad += 1

    def after_batch(self):
        self._stop_if_out_of_patience()

    def after_epoch(self):
        self._stop_if_out_of_patience()

    def _stop_if_out_of_patience(self):
        if self.patience and self.bad >= self.patience:
            log.info("no BLEU improvement in %d validations: stopping early", self.bad)
            raise CancelFitException

    def state_dict(self):
        return {"best": self.best, "bad": self.bad}

    def load_state_dict(self, state):
        self.best, self.bad = state["best"], state["bad"]


class Checkpointer(Callback):
    """``last.pt`` after every validation and at the end of the fit; ``best.pt`` whenever
    validation BLEU beats every earlier one (never replaced by a worse model)."""

    order = 30  # after the validator and every callback whose state changes with a validation

    def __init__(self, run_dir: Path, payload: Callable[[], dict[str, Any]]):
        self.run_dir = Path(run_dir)
        self.payload = payload  # the parts of a checkpoint only train_nmt.py knows (config, tokenizers)
        self.best = -math.inf

    def after_validate(self):
        bleu = self.learner.metrics["valid_bleu"]
        if bleu > self.best:
            self.best = bleu
            save_checkpoint(self.run_dir / "best.pt", self.model_checkpoint())
        self.save_last()

    def after_fit(self):
        if not self.learner.failed:
            self.save_last()

    def save_last(self) -> None:
        save_checkpoint(self.run_dir / "last.pt", self.training_checkpoint())

    def model_checkpoint(self) -> dict[str, Any]:
        """What translation needs: config, tokenizers, weights and where training was."""
        learner = self.learner
        return {
            **self.payload(),
            "model": learner.model.state_dict(),
            "progress": {"step": learner.step, "epoch": learner.epoch, "batch_in_epoch": learner.batch_in_epoch, "metrics": learner.metrics},
        }

    def training_checkpoint(self) -> dict[str, Any]:
        """Everything else a resumed run needs to continue exactly where this one stopped."""
        return {
            **self.model_checkpoint(),
            "optimizer": self.learner.opt.state_dict(),
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.learner.callbacks},
            "rng": rng_state(),
        }

    def state_dict(self):
        return {"best": self.best}

    def load_state_dict(self, state):
        self.best = state["best"]


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
            self._write({"step": self.learner.step, "epoch": self.learner.epoch, "train_loss": self.loss_sum / self.tokens,
                         "tokens_per_s": self.tokens / max(seconds, 1e-9), "lr": self.learner.opt.param_groups[0]["lr"]})
            self.loss_sum, self.tokens, self.since = 0.0, 0, time.monotonic()

    def state_dict(self):
        return {"loss_sum": self.loss_sum, "tokens": self.tokens}  # the steps since the last line written

    def load_state_dict(self, state):
        self.loss_sum, self.tokens = state["loss_sum"], state["tokens"]

    def after_validate(self):
        m = self.learner.metrics
        self._write({"step": self.learner.step, "epoch": self.learner.epoch, **m})
        log.info("step %d epoch %d: valid loss %.3f ppl %.2f BLEU %.2f", self.learner.step, self.learner.epoch,
                 m["valid_loss"], m["valid_ppl"], m["valid_bleu"])
        for source, hypothesis in getattr(self.learner, "examples", []):
            log.info("  %s -> %s", source, hypothesis)


class ProgressBar(Callback):
    """A tqdm bar per epoch on stderr: loss, perplexity, target tokens/s, learning rate."""

    order = 60

    def __init__(self, batches_per_epoch: Callable[[int], int]):
        self.batches_per_epoch = batches_per_epoch
        self.bar = None

    def before_epoch(self):
        learner = self.learner
        self.bar = tqdm(total=self.batches_per_epoch(learner.epoch), initial=learner.batch_in_epoch,
                        desc=f"epoch {learner.epoch + 1}", file=sys.stderr, mininterval=1.0, dynamic_ncols=True, leave=False)
        self.tokens, self.started = 0, time.monotonic()

    def after_batch(self):
        if self.bar is None:
            return
        self.tokens += self.learner.batch.n_tokens
        self.bar.update(1)
        if self.bar.n % 10 == 0 and hasattr(self.learner, "loss"):
            loss = self.learner.loss.item()
            self.bar.set_postfix(loss=f"{loss:.3f}", ppl=f"{math.exp(min(loss, 50)):.1f}",
                                 tok_s=f"{self.tokens / max(time.monotonic() - self.started, 1e-9):.0f}",
                                 lr=f"{self.learner.opt.param_groups[0]['lr']:.2e}", refresh=False)

    def after_epoch(self):
        self._close()

    def after_fit(self):
        self._close()

    def _close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
