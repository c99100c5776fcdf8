"""Training from the command line: config -> corpus -> tokenizers -> batches -> model -> Learner.

Every field of the three config dataclasses is a flag (``--batch-tokens``, ``--enc-hidden``,
...); a JSON or TOML file given with ``--config`` may set the same options in ``data``,
``model`` and ``train`` sections, and flags win over it.

Under torchrun every process runs this same command: each computes its share of every batch,
and only the first (the leader) validates, logs, shows progress and writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import os
import random
import signal
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import torch

from nmt import corpora
from nmt.allocator import keep_freed_memory
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
from nmt.checkpoint import (
    CheckpointError,
    load_checkpoint,
    restore_model,
    stored_config,
    tokenizers_from_payload,
    tokenizers_payload,
)
from nmt.commands.cli import Exit, UsageError, fail, pick_device
from nmt.commands.options import build_parser, explicit_options, make_config
from nmt.commands.resume import complete, forget_metrics_after, restore_progress, resume_command, resumed_config
from nmt.config import Config, TrainConfig
from nmt.data import BatchedData, Share, encode_pairs, fixed_batches
from nmt.distributed import Team
from nmt.learner import Learner, TrainingError
from nmt.loss import sequence_loss
from nmt.metrics import bleu
from nmt.models import build_model
from nmt.models.shortlist import Shortlisted, positions_in_list, target_side_ids
from nmt.precision import Precision
from nmt.reporting import MetricsLog, ProgressBar
from nmt.run_dir import owning
from nmt.schedules import DeadlineSchedule, InverseSqrtSchedule, PlateauSchedule, TeacherForcingSchedule
from nmt.search import SearchOptions
from nmt.text import CorpusError
from nmt.tokenizers import build_tokenizers
from nmt.tracking import JsonLines, Sink, TensorBoard, WeightsAndBiases
from nmt.translator import Translator
from nmt.validation import Validator

log = logging.getLogger("nmt")

VALID_BATCH_TOKENS = 2000  # at least: validation needs no gradients, so its batches can be larger
VALID_SEARCH = SearchOptions(beam_size=1)  # validation BLEU tracks training: greedy is enough, and fastest


class Interrupted(RuntimeError):
    """A run stopped by a signal, every process after the same step; the leader's carries the
    run folder and config, from which ``main`` prints the command that continues the run."""

    def __init__(self, message: str = "", *, run_dir: Path | None = None, config: Config | None = None):
        super().__init__(message)
        self.run_dir, self.config = run_dir, config


def train(config: Config, *, resume: bool = False, overwrite: bool = False, explicit: set[str] | None = None) -> Path:
    """Train as ``config`` says; returns the run folder (best.pt, last.pt, metrics.jsonl).
    ``resume`` continues the run in its run folder; ``overwrite`` deletes another run's files
    there first (nmt.run_dir); ``explicit`` names the options the user gave (see ``_resumed_config``)."""
    _check_trackers(config)
    run_dir = Path(config.train.run_dir)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    device = pick_device(config.train.device)
    team = Team.join(device)
    together = False  # whether every process ends at this same point, so that they can wait for each other
    try:
        with owning(run_dir, resume=resume, overwrite=overwrite) if team.leader else contextlib.nullcontext():
            run_dir = _train(config, run_dir, team.device(device), team, resume=resume, explicit=explicit)
        together = True
        return run_dir
    except Interrupted:  # stops are collective: every process stopped after the same step
        together = True
        raise
    finally:
        team.leave(together=together)


def _train(config: Config, run_dir: Path, device: torch.device, team: Team, *, resume: bool, explicit) -> Path:
    if not team.leader:
        log.setLevel(logging.WARNING)  # the leader tells the story
    try:
        precision = Precision(config.train.precision, device)
    except ValueError as e:
        raise UsageError(str(e)) from None

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
            return run_dir
    random.seed(config.train.seed)
    torch.manual_seed(config.train.seed)

    splits = corpora.load_corpus(config.data)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, corpus=splits.corpus))
    if checkpoint is not None:
        model, src_tok, trg_tok, _ = restore_model(checkpoint, run_dir / "last.pt")
    else:
        src_tok, trg_tok = _tokenizers(splits.train, config, team)
        model = build_model(config.model, src_tok, trg_tok)
    log.info(
        "vocabulary: %d source, %d target%s; model: %s, %.2fM parameters",
        len(src_tok),
        len(trg_tok),
        " (joint)" if src_tok is trg_tok else "",
        config.model.arch,
        sum(p.numel() for p in model.parameters()) / 1e6,
    )

    train_data = _data_checked(
        BatchedData,
        encode_pairs(splits.train, src_tok, trg_tok, max_len=config.data.max_len),
        batch_tokens=config.train.batch_tokens,
        batch_size=config.train.batch_size,
        seed=config.train.seed,
    )
    valid_batches = fixed_batches(
        encode_pairs([(s, t) for s, t in splits.valid if s], src_tok, trg_tok),
        batch_tokens=max(config.train.batch_tokens, VALID_BATCH_TOKENS),
        batch_size=config.train.batch_size,
    )
    valid_groups = corpora.group_by_source(splits.valid)[: config.train.valid_bleu_sentences]

    output_ids = target_side_ids(target for _, target in train_data.examples)  # stored for translation too
    listed = config.model.output_vocab == "trained"
    positions = positions_in_list(output_ids, len(trg_tok)).to(device) if listed else None
    if listed:
        model.list_outputs(torch.tensor(output_ids))
    model.to(device)
    if config.train.compile:
        # In place: the weights keep their names, so checkpoints are unchanged. Batches vary in both
        # sentences and length: compiled for any shape from the start, where the default would
        # compile for the first shape, then twice more before it made both dimensions dynamic.
        model.compile(dynamic=True)
    _fork_random_streams(team, config.train.seed, step=0)
    adam = torch.optim.AdamW if config.train.optimizer == "adamw" else torch.optim.Adam
    # Fused: one kernel for the whole update, several times faster than a loop over the weights,
    # and it can skip a non-finite update on the device (nmt.learner).
    optimizer = adam(
        model.parameters(),
        lr=config.train.lr,
        betas=(0.9, config.train.adam_beta2),
        weight_decay=config.train.weight_decay,
        fused=True,
    )

    def translate(model, sources):
        searched = Shortlisted(model, output_ids, cut=False) if listed else model
        return Translator(searched, src_tok, trg_tok, device=device).translate(sources, VALID_SEARCH, batch_size=128)

    callbacks = [
        DeviceCallback(device),
        StopOnSignal(),
        SkipOutOfMemory(_memory_advice(config.train)),
        SkipNonFiniteLoss(every=config.train.log_every),
        GradientClip(config.train.clip_norm),
        StopRule(max_steps=config.train.max_steps, time_budget=config.train.time_budget * 60),
    ]
    if team.leader:  # the others compute their pieces of each batch and nothing else
        callbacks += [
            Validator(
                loss_batches=valid_batches,
                loss_fn=partial(_batch_loss, positions=positions),
                sources=[s for s, _ in valid_groups],
                references=[refs for _, refs in valid_groups],
                translate=translate,
                bleu=bleu,
                every=config.train.valid_every,
            ),
            EarlyStopping(config.train.patience),
            Checkpointer(
                run_dir,
                lambda: {
                    "config": config.to_dict(),
                    "tokenizers": tokenizers_payload(src_tok, trg_tok),
                    "corpus": splits.fingerprint,
                    "output_ids": output_ids,
                },
                keep=config.train.keep_checkpoints,
                save_every=config.train.save_every * 60,
            ),
            ProgressBar(lambda epoch: len(train_data.epoch_batches(epoch)), every=config.train.log_every),
            MetricsLog(_metrics_sinks(run_dir, config, splits.fingerprint), every=config.train.log_every),
        ]
    if config.train.teacher_forcing < 1:
        t = config.train
        callbacks.append(
            TeacherForcingSchedule(t.teacher_forcing_schedule, k=t.teacher_forcing_k, floor=t.teacher_forcing)
        )
    if config.train.ema and team.leader:  # the average is for validating and saving, which the leader does
        callbacks.append(ExponentialMovingAverage(model, config.train.ema))
    if config.train.scheduler == "inverse_sqrt":
        callbacks.append(InverseSqrtSchedule(config.train.lr, config.train.warmup))
    elif config.train.scheduler == "plateau":
        callbacks.append(PlateauSchedule(optimizer))
    elif config.train.scheduler in ("linear", "cosine"):
        t = config.train
        callbacks.append(
            DeadlineSchedule(
                t.lr,
                warmup=t.warmup,
                shape=t.scheduler,
                floor=t.lr_floor,
                epochs=t.epochs,
                batches_per_epoch=lambda epoch: len(train_data.epoch_batches(epoch)),
            )
        )

    share = Share(team.rank, team.size, config.train.accum_steps)
    learner = Learner(
        model,
        batches=lambda epoch, start: train_data.batches(epoch, start=start, share=share),
        loss_fn=partial(_batch_loss, label_smoothing=config.train.label_smoothing, positions=positions),
        optimizer=optimizer,
        callbacks=callbacks,
        teacher_forcing=config.train.teacher_forcing,
        team=team,
        precision=precision,
    )
    if checkpoint is not None:
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
    return run_dir


def _fork_random_streams(team: Team, seed: int, *, step: int) -> None:
    """Every process starts from the same seed (the same initial weights); the others then draw
    their dropout masks from streams of their own, as the pieces of one process would."""
    if not team.leader:
        torch.manual_seed(seed + 7919 * team.rank + step)
        random.seed(seed + 7919 * team.rank + step)


def _memory_advice(train_config: TrainConfig) -> str:
    t = train_config
    budget = f"--batch-tokens (now {t.batch_tokens})" if t.batch_tokens else f"--batch-size (now {t.batch_size})"
    return f"lower {budget}, or raise --accum-steps (now {t.accum_steps}) to compute the same batch in more pieces"


TRACKERS = ("tensorboard", "wandb")  # the TrainConfig flags of the optional experiment trackers


def _check_trackers(config: Config) -> None:
    """Before any work: an asked-for tracker whose package is missing is a usage error."""
    for extra in TRACKERS:
        if getattr(config.train, extra) and importlib.util.find_spec(extra) is None:
            raise UsageError(f'--{extra} needs the {extra} package: pip install -e ".[{extra}]"')


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


def _tokenizers(train_pairs, config: Config, team: Team):
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


def _data_checked(make, *args, **kwargs):
    """``make(*args, **kwargs)``, where a ValueError means the data and the options do not fit
    (a vocabulary too small for the characters, no pair within --max-len): a TrainingError."""
    try:
        return make(*args, **kwargs)
    except ValueError as e:
        raise TrainingError(str(e)) from None


def _out_of_memory(learner: Learner, train_config: TrainConfig) -> str:
    budget = (
        ("--batch-tokens", train_config.batch_tokens)
        if train_config.batch_tokens
        else ("--batch-size", train_config.batch_size)
    )
    batch = learner.batch
    size = f" with a batch of {len(batch)} sentences, {batch.n_tokens} target tokens" if batch is not None else ""
    return (
        f"out of GPU memory at step {learner.step + 1}{size}: lower {budget[0]} (now {budget[1]}); "
        f"the checkpoints on disk are from the last save"
    )


def _batch_loss(logits, batch, *, label_smoothing: float = 0.0, positions=None):
    """``positions``: where each target id sits among the outputs a listed model scores (nmt.models.shortlist)."""
    targets = batch.trg_out if positions is None else positions[batch.trg_out]
    return sequence_loss(logits, targets, label_smoothing=label_smoothing)


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Every expected failure is one line on stderr, with its ``Exit`` status."""
    parser = build_parser(__doc__, prog)
    args = parser.parse_args(argv)
    keep_freed_memory()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S"
    )
    try:
        run_dir = train(
            make_config(args), resume=args.resume, overwrite=args.overwrite, explicit=explicit_options(args)
        )
    except Interrupted as e:
        if e.run_dir is not None:
            print(f"{e} Continue with: {resume_command(parser.prog, e.run_dir, e.config)}", file=sys.stderr)
        return Exit.INTERRUPTED
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training started
        print("interrupted: nothing saved since the last checkpoint", file=sys.stderr)
        return Exit.INTERRUPTED
    except UsageError as e:
        return fail(e, Exit.USAGE)
    except (CorpusError, CheckpointError, TrainingError, OSError) as e:  # OSError: e.g. a full disk under metrics.jsonl
        return fail(e, Exit.ERROR)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, the leader speaks
        print(f"checkpoints: {run_dir / 'best.pt'} (best validation BLEU), {run_dir / 'last.pt'} (latest)")
    return Exit.OK
