"""A training run: config -> corpus -> tokenizers -> batches -> model -> optimizer, schedule and
callbacks -> Learner.fit. ``train(config)`` is what ``nmt train`` calls; each step is a builder
named for what it builds, so a reader (or a script) can take the run apart.

Under torchrun every process runs this same function: each computes its share of every batch,
and only the first (the leader) trains the tokenizers, validates, logs, shows progress and
writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import random
import signal
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from nmt import corpora
from nmt.averaging import ExponentialMovingAverage
from nmt.callbacks import (
    Checkpointer,
    DeviceCallback,
    EarlyStopping,
    GradientClip,
    SkipNonFiniteLoss,
    SkipOutOfMemory,
    StopOnSignal,
    StopRule,
)
from nmt.checkpoint import load_checkpoint, restore_model, stored_config, tokenizers_from_payload, tokenizers_payload
from nmt.config import Config, ConfigError, DataConfig, TrainConfig
from nmt.corpora import Splits
from nmt.data import BatchedData, Share, encode_pairs, fixed_batches
from nmt.devices import pick_device
from nmt.distributed import Team
from nmt.learner import Callback, Learner, TrainingError
from nmt.loss import sequence_loss
from nmt.metrics import bleu
from nmt.models import build_model
from nmt.models.shortlist import Shortlisted, positions_in_list, target_side_ids
from nmt.precision import Precision
from nmt.reporting import MetricsLog, ProgressBar
from nmt.resume import complete, forget_metrics_after, restore_progress, resumed_config
from nmt.run_dir import owning
from nmt.schedules import DeadlineSchedule, InverseSqrtSchedule, PlateauSchedule, TeacherForcingSchedule
from nmt.search import SearchOptions
from nmt.spm import SpmTokenizer, seed_sampling
from nmt.tokenizers import build_tokenizers
from nmt.tracking import JsonLines, Sink, TensorBoard, WeightsAndBiases
from nmt.translator import Translator
from nmt.validation import Validator

log = logging.getLogger("nmt")

VALID_BATCH_TOKENS = 2000  # at least: validation needs no gradients, so its batches can be larger
VALID_SEARCH = SearchOptions(beam_size=1)  # validation BLEU tracks training: greedy is enough, and fastest
TRACKERS = ("tensorboard", "wandb")  # the TrainConfig flags of the optional experiment trackers


class Interrupted(RuntimeError):
    """A run stopped by a signal, every process after the same step; the leader's carries the
    run folder and config, from which the command prints how to continue the run."""

    def __init__(self, message: str = "", *, run_dir: Path | None = None, config: Config | None = None):
        super().__init__(message)
        self.run_dir, self.config = run_dir, config


def train(config: Config, *, resume: bool = False, overwrite: bool = False, explicit: set[str] | None = None) -> Path:
    """Train as ``config`` says; returns the run folder (best.pt, last.pt, metrics.jsonl).
    ``resume`` continues the run in its run folder; ``overwrite`` deletes another run's files
    there first (nmt.run_dir); ``explicit`` names the options the user gave (nmt.resume)."""
    check_trackers(config)
    run_dir = Path(config.train.run_dir)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    device = pick_device(config.train.device)
    team = Team.join(device)
    together = False  # whether every process ends at this same point, so that they can wait for each other
    try:
        with owning(run_dir, resume=resume, overwrite=overwrite) if team.leader else contextlib.nullcontext():
            _run(config, run_dir, team.device(device), team, resume=resume, explicit=explicit)
        together = True
        return run_dir
    except Interrupted:  # stops are collective: every process stopped after the same step
        together = True
        raise
    finally:
        team.leave(together=together)


def _run(config: Config, run_dir: Path, device: torch.device, team: Team, *, resume: bool, explicit) -> None:
    if not team.leader:
        log.setLevel(logging.WARNING)  # the leader tells the story
    try:
        precision = Precision(config.train.precision, device)
    except ValueError as e:
        raise ConfigError(str(e)) from None

    checkpoint = None
    if resume:
        checkpoint = load_checkpoint(run_dir / "last.pt")
        config = resumed_config(stored_config(checkpoint), config, explicit)
        if complete(checkpoint["progress"], config.train):
            log.info(
                "%s: the run is already complete (step %d, epoch %d); to train on, resume with a larger "
                "--max-steps, --time-budget or --epochs",
                run_dir / "last.pt",
                checkpoint["progress"]["step"],
                checkpoint["progress"]["epoch"],
            )
            return
    random.seed(config.train.seed)
    torch.manual_seed(config.train.seed)

    splits = corpora.load_corpus(config.data)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, corpus=splits.corpus))
    if checkpoint is not None:
        model, src_tok, trg_tok, _ = restore_model(checkpoint, run_dir / "last.pt")
    else:
        src_tok, trg_tok = build_tokenizers_once(splits.train, config, team)
        model = build_model(config.model, src_tok, trg_tok)
    log.info(
        "vocabulary: %d source, %d target%s; model: %s, %.2fM parameters",
        len(src_tok),
        len(trg_tok),
        " (joint)" if src_tok is trg_tok else "",
        config.model.arch,
        sum(p.numel() for p in model.parameters()) / 1e6,
    )
    data = build_data(splits, src_tok, trg_tok, config)
    positions = prepare_model(model, data.output_ids, config, device, trg_vocab=len(trg_tok))
    _fork_random_streams(team, config.train.seed, step=0)
    optimizer = build_optimizer(model, config.train)

    def translate(model, sources):
        searched = Shortlisted(model, data.output_ids, cut=False) if positions is not None else model
        return Translator(searched, src_tok, trg_tok, device=device).translate(sources, VALID_SEARCH, batch_size=128)

    payload = {
        "config": config.to_dict(),
        "tokenizers": tokenizers_payload(src_tok, trg_tok),
        "corpus": splits.fingerprint,
        "output_ids": data.output_ids,
    }
    callbacks = build_callbacks(
        config, run_dir, device, team, model, data, positions, translate, lambda: payload, splits.fingerprint
    )
    schedule = build_schedule(config.train, optimizer, batches_per_epoch=lambda e: len(data.train.epoch_batches(e)))
    share = Share(team.rank, team.size, config.train.accum_steps)
    learner = Learner(
        model,
        batches=lambda epoch, start: data.train.batches(epoch, start=start, share=share),
        loss_fn=partial(batch_loss, label_smoothing=config.train.label_smoothing, positions=positions),
        optimizer=optimizer,
        callbacks=callbacks + ([schedule] if schedule else []),
        teacher_forcing=config.train.teacher_forcing,
        team=team,
        precision=precision,
    )
    if checkpoint is not None:
        _resume(learner, checkpoint, run_dir, team, config)
    try:
        learner.fit(config.train.epochs)
    except torch.cuda.OutOfMemoryError:
        raise TrainingError(_out_of_memory(learner, config.train)) from None

    if learner.interrupted:
        received = learner.callback(StopOnSignal).received
        name = signal.Signals(received).name if received else "a signal to another process"
        if not team.leader:
            raise Interrupted()
        raise Interrupted(
            f"stopped by {name} at step {learner.step}; {run_dir / 'last.pt'} is saved.", run_dir=run_dir, config=config
        )


# The builders, in the order a run uses them ----------------------------------------------------


def build_tokenizers_once(train_pairs, config: Config, team: Team):
    """The leader trains the tokenizers and sends them to the other processes: SentencePiece on
    every process would cost each the same minutes, and a vocabulary that came out a piece
    different on one process would train a different model there without a word."""
    payload = None
    if team.leader:
        try:
            payload = tokenizers_payload(*_data_checked(build_tokenizers, train_pairs, config.data))
        except TrainingError as e:
            payload = {"error": str(e)}  # every process stops on it, none waits for tokenizers forever
    payload = team.object_from_leader(payload)
    if "error" in payload:
        raise TrainingError(payload["error"])
    return tokenizers_from_payload(payload)


@dataclass
class Data:
    train: BatchedData  # length-bucketed batches, reshuffled each epoch
    valid_batches: list  # for the validation loss
    valid_groups: list[tuple[str, list[str]]]  # (source, its references), for validation BLEU
    output_ids: list[int]  # the target-side tokens of the training data, which the output layer keeps


def build_data(splits: Splits, src_tok, trg_tok, config: Config) -> Data:
    d = config.data
    train_data = _data_checked(
        BatchedData,
        encode_pairs(splits.train, src_tok, trg_tok, max_len=d.max_len),
        batch_tokens=config.train.batch_tokens,
        batch_size=config.train.batch_size,
        seed=config.train.seed,
        resample=partial(_sampled_segmentation, splits.train, src_tok, trg_tok, d, config.train.seed)
        if d.spm_alpha > 0
        else None,
    )
    valid_batches = fixed_batches(
        encode_pairs([(s, t) for s, t in splits.valid if s], src_tok, trg_tok),
        batch_tokens=max(config.train.batch_tokens, VALID_BATCH_TOKENS),
        batch_size=config.train.batch_size,
    )
    return Data(
        train=train_data,
        valid_batches=valid_batches,
        valid_groups=corpora.group_by_source(splits.valid)[: config.train.valid_bleu_sentences],
        # a sampled segmentation may use any piece: the output layer then keeps them all
        output_ids=list(range(len(trg_tok)))
        if d.spm_alpha > 0
        else target_side_ids(target for _, target in train_data.examples),
    )


def _sampled_segmentation(pairs, src_tok, trg_tok, d: DataConfig, seed: int, epoch: int):
    """The training pairs of ``epoch`` in a segmentation sampled from ``seed + epoch`` alone."""
    seed_sampling(seed + epoch)
    sample = partial(SpmTokenizer.encode_sampled, alpha=d.spm_alpha, nbest=d.spm_nbest)
    return encode_pairs(pairs, src_tok, trg_tok, max_len=d.max_len, encode=sample)


def prepare_model(model, output_ids: list[int], config: Config, device: torch.device, *, trg_vocab: int):
    """The model on its device, scoring only ``output_ids`` when the config says so (then the
    place of each target id in that list is returned, for the loss; else None), compiled if asked."""
    positions = None
    if config.model.output_vocab == "trained":
        positions = positions_in_list(output_ids, trg_vocab).to(device)
        model.list_outputs(torch.tensor(output_ids))
    model.to(device)
    if config.train.compile:
        # In place: the weights keep their names, so checkpoints are unchanged. Batches vary in both
        # sentences and length: compiled for any shape from the start, where the default would
        # compile for the first shape, then twice more before it made both dimensions dynamic.
        model.compile(dynamic=True)
    return positions


def build_optimizer(model: torch.nn.Module, t: TrainConfig) -> torch.optim.Optimizer:
    adam = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
    # Fused: one kernel for the whole update, several times faster than a loop over the weights,
    # and it can skip a non-finite update on the device (nmt.learner).
    return adam(model.parameters(), lr=t.lr, betas=(0.9, t.adam_beta2), weight_decay=t.weight_decay, fused=True)


def build_schedule(
    t: TrainConfig, optimizer: torch.optim.Optimizer, *, batches_per_epoch: Callable[[int], int]
) -> Callback | None:
    """The learning-rate schedule --scheduler names, as a callback; None for a constant rate."""
    if t.scheduler == "inverse_sqrt":
        return InverseSqrtSchedule(t.lr, t.warmup)
    if t.scheduler == "plateau":
        return PlateauSchedule(optimizer)
    if t.scheduler in ("linear", "cosine"):
        return DeadlineSchedule(
            t.lr,
            warmup=t.warmup,
            shape=t.scheduler,
            floor=t.lr_floor,
            epochs=t.epochs,
            batches_per_epoch=batches_per_epoch,
        )
    return None


def build_callbacks(
    config: Config,
    run_dir: Path,
    device: torch.device,
    team: Team,
    model,
    data: Data,
    positions,
    translate,
    payload: Callable[[], dict],
    fingerprint: dict,
) -> list[Callback]:
    """Everything a run does around its steps: the device, signals, faults, clipping and the
    stopping rule on every process; validation, early stopping, checkpoints, progress, metrics
    and the weight average on the leader, which alone validates and writes."""
    t = config.train
    callbacks = [
        DeviceCallback(device),
        StopOnSignal(),
        SkipOutOfMemory(_memory_advice(t)),
        SkipNonFiniteLoss(every=t.log_every),
        GradientClip(t.clip_norm),
        StopRule(max_steps=t.max_steps, time_budget=t.time_budget * 60),
    ]
    if team.leader:
        callbacks += [
            Validator(
                loss_batches=data.valid_batches,
                loss_fn=partial(batch_loss, positions=positions),
                sources=[s for s, _ in data.valid_groups],
                references=[refs for _, refs in data.valid_groups],
                translate=translate,
                bleu=partial(bleu, tokenize=config.data.bleu_tokenizer()),
                every=t.valid_every,
            ),
            EarlyStopping(t.patience),
            Checkpointer(run_dir, payload, keep=t.keep_checkpoints, save_every=t.save_every * 60),
            ProgressBar(lambda epoch: len(data.train.epoch_batches(epoch)), every=t.log_every),
            MetricsLog(_metrics_sinks(run_dir, config, fingerprint), every=t.log_every),
        ]
        if t.ema:  # the average is for validating and saving, which the leader does
            callbacks.append(ExponentialMovingAverage(model, t.ema))
    if t.teacher_forcing < 1:
        schedule = TeacherForcingSchedule(t.teacher_forcing_schedule, k=t.teacher_forcing_k, floor=t.teacher_forcing)
        callbacks.append(schedule)
    return callbacks


def batch_loss(logits, batch, *, label_smoothing: float = 0.0, positions=None):
    """``positions``: where each target id sits among the outputs a listed model scores (nmt.models.shortlist)."""
    targets = batch.trg_out if positions is None else positions[batch.trg_out]
    return sequence_loss(logits, targets, label_smoothing=label_smoothing)


def check_trackers(config: Config) -> None:
    """Before any work: an asked-for tracker whose package is missing is a ConfigError."""
    for extra in TRACKERS:
        if getattr(config.train, extra) and importlib.util.find_spec(extra) is None:
            raise ConfigError(f'--{extra} needs the {extra} package: pip install -e ".[{extra}]"')


# The rest ---------------------------------------------------------------------------------------


def _resume(learner: Learner, checkpoint: dict, run_dir: Path, team: Team, config: Config) -> None:
    restore_progress(learner, checkpoint)
    _fork_random_streams(team, config.train.seed, step=learner.step)
    if team.leader:
        forget_metrics_after(run_dir / "metrics.jsonl", learner.step)
    log.info(
        "resumed %s at step %d (epoch %d, batch %d)",
        run_dir / "last.pt",
        learner.step,
        learner.epoch + 1,
        learner.batch_in_epoch,
    )


def _fork_random_streams(team: Team, seed: int, *, step: int) -> None:
    """Every process starts from the same seed (the same initial weights); the others then draw
    their dropout masks from streams of their own, as the pieces of one process would."""
    if not team.leader:
        torch.manual_seed(seed + 7919 * team.rank + step)
        random.seed(seed + 7919 * team.rank + step)


def _memory_advice(t: TrainConfig) -> str:
    budget = f"--batch-tokens (now {t.batch_tokens})" if t.batch_tokens else f"--batch-size (now {t.batch_size})"
    return f"lower {budget}, or raise --accum-steps (now {t.accum_steps}) to compute the same batch in more pieces"


def _metrics_sinks(run_dir: Path, config: Config, corpus: dict) -> list[Sink]:
    """metrics.jsonl, which starts with the corpus fingerprint, and the trackers the config asks for."""
    metrics = JsonLines(run_dir / "metrics.jsonl")
    metrics.write({"corpus": config.data.corpus, "corpus_fingerprint": corpus})
    sinks: list[Sink] = [metrics]
    if config.train.tensorboard:
        sinks.append(TensorBoard(run_dir, config.to_dict()))
    if config.train.wandb:
        sinks.append(WeightsAndBiases(run_dir, config.to_dict(), project=config.train.wandb_project))
    return sinks


def _data_checked(make, *args, **kwargs):
    """``make(*args, **kwargs)``, where a ValueError means the data and the options do not fit
    (a vocabulary too small for the characters, no pair within --max-len): a TrainingError."""
    try:
        return make(*args, **kwargs)
    except ValueError as e:
        raise TrainingError(str(e)) from None


def _out_of_memory(learner: Learner, t: TrainConfig) -> str:
    budget = ("--batch-tokens", t.batch_tokens) if t.batch_tokens else ("--batch-size", t.batch_size)
    batch = learner.batch
    size = f" with a batch of {len(batch)} sentences, {batch.n_tokens} target tokens" if batch is not None else ""
    return (
        f"out of GPU memory at step {learner.step + 1}{size}: lower {budget[0]} (now {budget[1]}); "
        f"the checkpoints on disk are from the last save"
    )
