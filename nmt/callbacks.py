"""The callbacks that steer a training run: device, signals, non-finite steps, clipping, the
stopping rules and checkpoints. Side effects only, one job each; schedules, validation and
reporting have modules of their own."""

from __future__ import annotations

import logging
import math
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nmt.checkpoint import rng_state, save_checkpoint
from nmt.learner import (
    Callback,
    CancelBatchException,
    CancelFitException,
    TrainingError,
)
from nmt.validation import Validator

log = logging.getLogger(__name__)


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
    then writes last.pt, and train_nmt.py exits non-zero saying how to resume. The same signal
    twice means stop now; a Ctrl-C under torchrun brings both (SIGINT from the terminal,
    SIGTERM from torchrun), which is still one request."""

    order = 70  # last: the step's own validation and checkpoint happen first, as they would uninterrupted
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: int | None = None  # the first signal
        self._seen: set[int] = set()
        self._previous: dict[int, Any] = {}

    def before_fit(self):
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._note)

    def _note(self, signum, frame):
        if signum in self._seen:
            raise KeyboardInterrupt
        self._seen.add(signum)
        self.received = self.received or signum

    def after_batch(self):
        if self.received is not None:
            self.learner.interrupted = True
            raise CancelFitException

    def after_fit(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class SkipNonFiniteLoss(Callback):
    """A NaN/inf loss, or gradient (an overflow in the backward pass), skips its update: the
    optimizer never applies it, though the step counts. The check and its counts stay on the
    device and are read every ``every`` steps and before each validation (so that no checkpoint
    follows a streak): there the skips are logged, and ``patience`` in a row stop training with
    an error. The checkpoints on disk are then the last good ones."""

    order = -5  # before clipping, which would spread one NaN over every gradient

    def __init__(self, patience: int = 10, every: int = 100):
        self.patience = patience
        self.every = every
        self.in_a_row: Tensor | int = 0  # skipped updates up to the latest, on the device
        self.longest: Tensor | int = 0  # the longest run of them since the last reading
        self.skipped: Tensor | int = 0
        self.reported = 0  # skips already logged
        self.since = 1  # the first step not read yet

    def after_backward(self):
        learner = self.learner
        bad = ~torch.isfinite(learner.loss)
        if not learner.precision.scaler.is_enabled():  # fp16: the scaler skips overflowing gradients itself
            grads = [p.grad for p in learner.model.parameters() if p.grad is not None]
            bad |= ~torch.isfinite(torch.nn.utils.get_total_norm(grads, norm_type=math.inf))  # max |g|: no overflow
        learner.skip_update = bad if learner.skip_update is None else learner.skip_update | bad
        self.in_a_row = (self.in_a_row + bad) * bad
        self.longest = torch.clamp(self.in_a_row, min=self.longest)  # a tensor on the device, or 0
        self.skipped = self.skipped + bad

    def after_step(self):
        if self.learner.step % self.every == 0:
            self._read()

    def after_validate(self):
        self._read()

    def _read(self):
        step = self.learner.step
        in_a_row, longest, skipped = self._counts()
        if skipped > self.reported:
            log.warning(
                "steps %d-%d: updates skipped for a non-finite loss or gradient: %d (%d in a row at most)",
                self.since,
                step,
                skipped - self.reported,
                longest,
            )
        if longest >= self.patience:
            raise TrainingError(
                f"{longest} steps in a row with a non-finite loss or gradient: stopping; lower --lr or check the data"
            )
        self.in_a_row, self.longest, self.skipped = in_a_row, in_a_row, skipped
        self.reported, self.since = skipped, step + 1

    def _counts(self) -> tuple[int, int, int]:
        """(in_a_row, longest, skipped) read from the device: the host waits for it here."""
        return int(self.in_a_row), int(self.longest), int(self.skipped)

    def state_dict(self):
        in_a_row, longest, skipped = self._counts()
        return {
            "skipped": skipped,
            "in_a_row": in_a_row,
            "longest": longest,
            "reported": self.reported,
            "since": self.since,
        }

    def load_state_dict(self, state):
        self.skipped, self.in_a_row = state["skipped"], state["in_a_row"]
        self.longest = state.get("longest", self.in_a_row)
        self.reported = state.get("reported", self.skipped)
        self.since = state.get("since", 1)


class SkipOutOfMemory(Callback):
    """An update that ran out of memory (on any process: they all skip it) is skipped with a
    warning that says what to lower; ``patience`` in a row stop training with an error."""

    order = -6  # before the loss of a half-computed update is checked or logged

    def __init__(self, advice: str, patience: int = 10):
        self.advice = advice
        self.patience = patience
        self.in_a_row = 0

    def after_loss(self):
        learner = self.learner
        if not learner.out_of_memory:
            self.in_a_row = 0
            return
        self.in_a_row += 1
        message = (
            f"out of memory at step {learner.step + 1} on a batch of {len(learner.batch)} sentences, "
            f"{learner.batch.n_tokens} target tokens"
        )
        if self.in_a_row >= self.patience:
            raise TrainingError(f"{message}, {self.in_a_row} batches in a row: {self.advice}")
        log.warning("%s: skipped (%d in a row); %s", message, self.in_a_row, self.advice)
        raise CancelBatchException


class GradientClip(Callback):
    def __init__(self, max_norm: float):
        self.max_norm = max_norm

    def after_backward(self):
        if self.max_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.learner.model.parameters(), self.max_norm)


class StopRule(Callback):
    """End the fit at ``max_steps`` or when the wall-clock ``time_budget`` (seconds) would be
    overrun; the budget counts validation too, so the time the last validation took is kept
    in reserve for the final one. The time used is read at the end of each batch, into
    ``learner.budget_used``, which several processes take from the leader."""

    order = 35  # after a validation due at this very step (the longer run would have done it) and the saves

    def __init__(self, *, max_steps: int = 0, time_budget: float = 0.0):
        self.max_steps = max_steps
        self.time_budget = time_budget

    def fraction_done(self, step: int) -> float:
        """How much of the run is over once update ``step`` is taken: 1.0 when this rule will stop
        it, 0.0 for a run with neither limit."""
        by_steps = step / self.max_steps if self.max_steps else 0.0
        return max(by_steps, self.learner.budget_used)

    def before_fit(self):
        self._read_clock()  # a resumed run has used time already: what the schedule's first step sees

    def after_batch(self):
        self._read_clock()
        if self.fraction_done(self.learner.step) >= 1.0:
            raise CancelFitException

    def _read_clock(self):
        if self.time_budget:
            validator = self.learner.callback(Validator)
            reserve = validator.last_duration if validator else 0.0
            self.learner.budget_used = (self.learner.elapsed + reserve) / self.time_budget


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
    """``last.pt`` after every validation, every ``save_every`` seconds of training (so that a
    killed run loses at most that much) and at the end of the fit; ``best.pt`` whenever
    validation BLEU beats every earlier one (never replaced by a worse model); with ``keep``,
    the models of the last ``keep`` validations as ``step-STEP.pt`` too, for weight averaging."""

    order = 30  # after the validator and every callback whose state changes with a validation

    def __init__(self, run_dir: Path, payload: Callable[[], dict[str, Any]], *, keep: int = 0, save_every: float = 0.0):
        self.run_dir = Path(run_dir)
        self.payload = payload  # the parts of a checkpoint only train_nmt.py knows (config, tokenizers)
        self.keep = keep
        self.save_every = save_every
        self.saved_at = 0.0  # learner.elapsed at the latest save of last.pt
        self.best = -math.inf

    def before_fit(self):
        self.saved_at = self.learner.elapsed  # a resumed run counts from where it restarts

    def after_batch(self):
        if self.save_every and self.learner.elapsed - self.saved_at >= self.save_every:
            self.save_last()

    def after_report(self):
        """A better final report gives best.pt, but leaves ``best`` (which --resume restores) alone."""
        if self.learner.metrics["valid_bleu"] > self.best:
            save_checkpoint(self.run_dir / "best.pt", self.model_checkpoint())

    def after_validate(self):
        bleu = self.learner.metrics["valid_bleu"]
        if bleu > self.best:
            self.best = bleu
            save_checkpoint(self.run_dir / "best.pt", self.model_checkpoint())
        if self.keep:
            save_checkpoint(self.run_dir / f"step-{self.learner.step}.pt", self.model_checkpoint())
            for old in step_checkpoints(self.run_dir)[: -self.keep]:
                old.unlink()
        self.save_last()

    def after_fit(self):
        if not self.learner.failed:
            self.save_last()

    def save_last(self) -> None:
        self.saved_at = self.learner.elapsed
        save_checkpoint(self.run_dir / "last.pt", self.training_checkpoint())

    def model_checkpoint(self) -> dict[str, Any]:
        """What translation needs: config, tokenizers, weights and where training was."""
        learner = self.learner
        return {
            **self.payload(),
            "model": learner.published.state_dict(),
            "progress": {
                "elapsed": learner.elapsed,
                "step": learner.step,
                "epoch": learner.epoch,
                "batch_in_epoch": learner.batch_in_epoch,
                "metrics": learner.metrics,
            },
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


def step_checkpoints(run_dir: Path) -> list[Path]:
    """The step-STEP.pt files a Checkpointer kept in ``run_dir``, oldest first."""
    return sorted(Path(run_dir).glob("step-*.pt"), key=lambda path: int(path.stem.split("-")[1]))
