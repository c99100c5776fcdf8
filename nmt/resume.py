"""What ``nmt train --resume`` does: which options a resumed run may change, when there is
nothing left to do, and how the learner, its callbacks and metrics.jsonl continue exactly."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

from nmt.checkpoint import set_rng_state
from nmt.config import SECTION_TYPES, Config, ConfigError, TrainConfig, flag
from nmt.files import atomic_write
from nmt.learner import Learner

# What a resumed run may change: when it stops (the stopping rule is given again at every resume,
# as the resume command printed at a stop shows), where and how it computes (a run may move to a
# machine with more memory, a GPU, or another number of processes), and how it reports and saves.
# Everything else would make it another run than the one being continued.
STOPPING_RULE = ("epochs", "max_steps", "time_budget")
MAY_CHANGE_ON_RESUME = {
    *STOPPING_RULE,
    "patience",
    "device",
    "threads",
    "accum_steps",
    "precision",
    "compile",
    "log_every",
    "save_every",
    "keep_checkpoints",
    "tensorboard",
    "wandb",
    "wandb_project",
    "run_dir",
}


def resumed_config(stored: Config, given: Config, explicit: set[str] | None) -> Config:
    """The stored config with the changes a resume may make. ``explicit`` holds the options the
    user gave ("train.lr"...; None: every field of ``given`` counts as given); one of them that
    differs from the stored run and may not change is a ConfigError naming its flag."""
    changes = {}
    for section, cls in SECTION_TYPES.items():
        for f in dataclasses.fields(cls):
            old, new = getattr(getattr(stored, section), f.name), getattr(getattr(given, section), f.name)
            key = f"{section}.{f.name}"
            asked = key in explicit if explicit is not None else not (key == "data.corpus" and new == "auto")
            if not asked or new == old:
                continue
            if section != "train" or f.name not in MAY_CHANGE_ON_RESUME:
                allowed = ", ".join(
                    flag("train", f) for f in dataclasses.fields(TrainConfig) if f.name in MAY_CHANGE_ON_RESUME
                )
                raise ConfigError(
                    f"{flag(section, f)} {new!r}: a resumed run keeps its {old!r}; it may change only {allowed} "
                    "(start a new --run-dir to train otherwise)"
                )
            changes[f.name] = new
    changes.update({name: getattr(given.train, name) for name in STOPPING_RULE})
    return dataclasses.replace(stored, train=dataclasses.replace(stored.train, **changes))


def complete(progress: dict, limits: TrainConfig) -> bool:
    """Whether a run that got this far has reached the limits: a resume would train past them."""
    return (
        progress["epoch"] >= limits.epochs
        or bool(limits.max_steps and progress["step"] >= limits.max_steps)
        or bool(limits.time_budget and progress["elapsed"] >= limits.time_budget * 60)
    )


def forget_metrics_after(path: Path, step: int) -> None:
    """Drop from metrics.jsonl what the continued run does not see: the records of steps after
    ``step`` (a run killed after its last save logged training the resumed run does again) and
    the final report of the run that stopped at ``step``."""
    if not path.exists():
        return
    lines = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True) if line.endswith("\n")]
    records = [json.loads(line) for line in lines]
    kept = [
        line
        for line, record in zip(lines, records)
        if record.get("step", 0) < step or (record.get("step") == step and not record.get("report"))
    ]
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.writelines(kept)


def resume_command(program: str, run_dir: Path, config: Config) -> str:
    """The command that continues this run, started as ``program`` (train_nmt.py, nmt train...):
    --resume restores everything but the stopping rule, which is given again."""
    words = [*shlex.split(program), "--resume", "--run-dir", str(run_dir)]
    for name in ("epochs", "max_steps", "time_budget"):
        value = getattr(config.train, name)
        if value != getattr(TrainConfig, name):
            words += ["--" + name.replace("_", "-"), str(value)]
    return shlex.join(words)


def restore_progress(learner: Learner, checkpoint: dict) -> None:
    saved = checkpoint["optimizer"]
    # The state, with this run's kernels (fused, foreach): a checkpoint from before the optimizer
    # was fused resumes fused, with its state on the device the fused kernel wants.
    kernels = [{key: group.get(key) for key in ("fused", "foreach")} for group in learner.opt.param_groups]
    groups = [{**group, **mine} for group, mine in zip(saved["param_groups"], kernels)]
    learner.opt.load_state_dict({**saved, "param_groups": groups})
    progress = checkpoint["progress"]
    learner.step, learner.epoch, learner.batch_in_epoch = (
        progress["step"],
        progress["epoch"],
        progress["batch_in_epoch"],
    )
    learner.metrics = progress["metrics"]
    learner.seconds_before = progress["elapsed"]
    for cb in learner.callbacks:
        state = checkpoint["callbacks"].get(type(cb).__name__)
        if state:
            cb.load_state_dict(state)
    set_rng_state(checkpoint["rng"])
