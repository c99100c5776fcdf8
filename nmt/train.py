"""Training from the command line: config -> corpus -> tokenizers -> batches -> model -> Learner.

Every field of the three config dataclasses is a flag (``--batch-tokens``, ``--enc-hidden``,
...); a JSON or TOML file given with ``--config`` may set the same options in ``data``,
``model`` and ``train`` sections, and flags win over it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import random
import shlex
import signal
import sys
import tomllib
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import torch

from nmt import corpora
from nmt.callbacks import (Checkpointer, DeviceCallback, EarlyStopping, GradientClip, InverseSqrtSchedule, MetricsLog,
                           PlateauSchedule, ProgressBar, SkipNonFiniteLoss, StopOnSignal, StopRule, TrainingError,
                           Validator, set_rng_state)
from nmt.cli import OneLineErrorParser, UsageError, pick_device
from nmt.checkpoint import CheckpointError, load_checkpoint, remove_leftovers, restore_model, tokenizers_payload
from nmt.config import Config, DataConfig, ModelConfig, TrainConfig
from nmt.data import BatchedData, bucket, encode_pairs, make_batch
from nmt.evaluate import bleu
from nmt.learner import Learner
from nmt.loss import sequence_loss
from nmt.seq2seq import build_model
from nmt.tokenizers import build_tokenizers
from nmt.translator import Translator
from nmt.vocab import SPECIALS

log = logging.getLogger("nmt")

HELP = {
    "corpus": "a corpus file (fra-eng.zip, fra.txt, eng-fra.txt), parallel files as 'data/train.{lang}' "
              "(data/train.en + data/train.fr), 'eng-fra' (downloaded into corpora/ when missing), 'demo' "
              "(generated, offline) or 'auto' (eng-fra if available, else demo)",
    "src": "source language: en or fr", "tgt": "target language: en or fr (the same as --src: autoencoder)",
    "tokenizer": "word (Lang) or spm (SentencePiece)", "vocab_size": "SentencePiece pieces, or the cap on a word vocabulary (0: none)",
    "max_len": "longest training sentence, in tokens", "time_budget": "minutes of wall clock, validation included (0: none)",
    "batch_tokens": "tokens per batch, padding included (0: --batch-size sentences)",
    "teacher_forcing": "probability of reading the reference rather than the model's own prediction",
    "valid_every": "also validate every N steps (0: after each epoch only)",
    "log_every": "write the mean training loss of the last N steps to metrics.jsonl",
    "layers": "RNN layers; for the Transformer, encoder and decoder layers unless --enc-layers/--dec-layers say otherwise",
}
ALIASES = {"ff_size": ["--ff"]}
FLAG_NAMES = {("data", "seed"): "--data-seed"}  # --seed is the training seed

# A Transformer trained for minutes on a CPU gets a few hundred updates: the usual GPU recipe
# (warm-up over 4000 steps of 25k-token batches) would never reach its peak rate. Smaller
# batches give more updates, and a short warm-up lets a pre-norm model use a high rate early.
TRANSFORMER_DEFAULTS = {
    "model": {"dropout": 0.1},
    "train": {"scheduler": "inverse_sqrt", "lr": 2e-3, "warmup": 300, "batch_tokens": 3000, "label_smoothing": 0.1},
}


def flag(section: str, name: str) -> str:
    return FLAG_NAMES.get((section, name), "--" + name.replace("_", "-"))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="train_nmt.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="JSON or TOML file with data/model/train sections")
    parser.add_argument("--autoencoder", action="store_true", help="reconstruct the source: target language = source language")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last.pt")
    parser.add_argument("--verbose", action="store_true")
    for section, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
        group = parser.add_argument_group(section)
        for f in dataclasses.fields(cls):
            flags = [flag(section, f.name)] + ALIASES.get(f.name, [])
            kind = type(f.default)
            kwargs: dict[str, Any] = {"dest": f"{section}.{f.name}", "default": argparse.SUPPRESS,
                                      "help": f"{HELP.get(f.name, '')} (default: {f.default})".strip()}
            if kind is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            else:
                kwargs["type"] = kind
            group.add_argument(*flags, **kwargs)
    return parser


def read_config_file(path: Path) -> dict[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: cannot read config ({e})") from None


def make_config(args: argparse.Namespace) -> Config:
    """Dataclass defaults <- architecture defaults <- config file <- flags."""
    given: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "train": {}}
    for key, value in vars(args).items():
        if "." in key:
            section, name = key.split(".")
            given[section][name] = value
    from_file = read_config_file(args.config) if args.config else {}
    arch = given["model"].get("arch", from_file.get("model", {}).get("arch", ModelConfig.arch))
    merged: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "train": {}}
    for layer in (TRANSFORMER_DEFAULTS if arch == "transformer" else {}, from_file, given):
        for section in merged:
            merged[section].update(layer.get(section, {}))
    if arch == "transformer" and "layers" in given["model"]:
        for name in ("enc_layers", "dec_layers"):
            merged["model"][name] = given["model"].get(name, given["model"]["layers"])
    if args.autoencoder:
        merged["data"]["tgt"] = merged["data"].get("src", DataConfig.src)
    try:
        return Config.from_dict(merged)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None


# The values each option takes, checked before any work starts (the model would only find a bad
# --cell after the corpus is read and the tokenizers are trained).
CHOICES = {
    "data.src": corpora.LANGS, "data.tgt": corpora.LANGS,
    "data.tokenizer": ("word", "spm"), "data.spm_model_type": ("unigram", "bpe"),
    "model.arch": ("rnn", "transformer"), "model.cell": ("lstm", "gru", "rnn"), "model.rnn_impl": ("torch", "scratch"),
    "model.attention": ("bahdanau", "none"), "model.bridge": ("linear", "identity", "zero"),
    "model.norm": ("pre", "post"), "model.positions": ("sinusoidal", "learned"),
    "train.scheduler": ("plateau", "inverse_sqrt", "none"),
}
AT_LEAST_ONE = {
    "data.max_len", "data.min_count", "data.valid_size", "model.emb_size", "model.enc_hidden", "model.dec_hidden",
    "model.layers", "model.d_model", "model.heads", "model.ff_size", "model.enc_layers", "model.dec_layers",
    "model.max_positions", "train.batch_size", "train.valid_bleu_sentences", "train.log_every",
}
NOT_NEGATIVE = {  # 0 means none, no limit or the default
    "data.vocab_size", "data.min_len", "data.test_size", "train.batch_tokens", "train.epochs", "train.max_steps",
    "train.time_budget", "train.clip_norm", "train.warmup", "train.patience", "train.valid_every", "train.threads",
}
FRACTIONS = {"model.dropout", "train.teacher_forcing", "train.label_smoothing"}


def validate(config: Config) -> None:
    """Raise UsageError, one line naming the flag and what it takes, for any option out of range."""
    for section in ("data", "model", "train"):
        options = getattr(config, section)
        for f in dataclasses.fields(options):
            key, value, name = f"{section}.{f.name}", getattr(options, f.name), flag(section, f.name)
            kind = type(f.default)
            if not (type(value) is kind or (kind is float and type(value) is int)):
                raise UsageError(f"{name} takes {kind.__name__} values, not {value!r}")
            if key in CHOICES and value not in CHOICES[key]:
                raise UsageError(f"{name} {value!r}: choose {', '.join(CHOICES[key][:-1])} or {CHOICES[key][-1]}")
            if key in AT_LEAST_ONE and not value >= 1:
                raise UsageError(f"{name} {value}: must be at least 1")
            if key in NOT_NEGATIVE and not value >= 0:
                raise UsageError(f"{name} {value}: must be 0 or more")
            if key in FRACTIONS and not 0 <= value <= 1:
                raise UsageError(f"{name} {value}: must be between 0 and 1")
    if not 0 < config.train.lr <= 1:
        raise UsageError(f"--lr {config.train.lr}: must be above 0 and at most 1")
    if 0 < config.data.vocab_size <= len(SPECIALS):
        raise UsageError(f"--vocab-size {config.data.vocab_size}: must be 0 (no cap) or above {len(SPECIALS)}, the special tokens")
    if config.data.min_len > config.data.max_len:
        raise UsageError(f"--min-len {config.data.min_len} is above --max-len {config.data.max_len}")
    if config.model.arch == "transformer" and config.model.d_model % config.model.heads:
        raise UsageError(f"--d-model {config.model.d_model} must be a multiple of --heads {config.model.heads}")
    if config.train.device != "auto":
        try:
            torch.device(config.train.device)
        except RuntimeError:
            raise UsageError(f"--device {config.train.device!r}: choose auto, cpu, cuda or cuda:N") from None


def check_run_dir(run_dir: Path) -> None:
    """Fail before training, not at the first save, when checkpoints cannot be written; and
    clear away the half-written checkpoints of a run that was killed."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"\0" * 1024)
        probe.unlink()
        for leftover in remove_leftovers(run_dir):
            log.info("removed %s, left by a save that never finished", leftover)
    except OSError as e:
        raise TrainingError(f"cannot write checkpoints to {run_dir}: {e.strerror or e}") from None


def resolve_auto_corpus(config: Config) -> Config:
    """--corpus auto: the real corpus when it is here or can be fetched, else the demo corpus."""
    if config.data.corpus != "auto":
        return config
    try:
        corpora.resolve_corpus("eng-fra")
        name = "eng-fra"
    except corpora.CorpusError as e:
        log.warning("%s", e)
        log.warning("training on the embedded demo corpus (English/French number words) instead")
        name = "demo"
    return dataclasses.replace(config, data=dataclasses.replace(config.data, corpus=name))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def train(config: Config, *, resume: bool = False) -> Path:
    """Train as ``config`` says; returns the run folder (best.pt, last.pt, metrics.jsonl)."""
    validate(config)
    run_dir = Path(config.train.run_dir)
    check_run_dir(run_dir)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    device = pick_device(config.train.device)

    checkpoint = None
    if resume:
        checkpoint = load_checkpoint(run_dir / "last.pt")
        stored = Config.from_dict(checkpoint["config"])
        # The stopping rule and device may change on resume; the data and the model may not.
        config = dataclasses.replace(stored, train=dataclasses.replace(
            stored.train, epochs=config.train.epochs, max_steps=config.train.max_steps,
            time_budget=config.train.time_budget, device=config.train.device, threads=config.train.threads))
    seed_everything(config.train.seed)

    config = resolve_auto_corpus(config)
    splits = corpora.load_corpus(config.data)
    if checkpoint is not None:
        model, src_tok, tgt_tok, _ = restore_model(checkpoint, run_dir / "last.pt")
    else:
        src_tok, tgt_tok = _data_checked(build_tokenizers, splits.train, config.data)
        model = build_model(config.model, src_vocab_size=len(src_tok), trg_vocab_size=len(tgt_tok), shared_vocab=src_tok is tgt_tok)
    log.info("vocabulary: %d source, %d target%s; model: %s, %.2fM parameters", len(src_tok), len(tgt_tok),
             " (joint)" if src_tok is tgt_tok else "", config.model.arch, sum(p.numel() for p in model.parameters()) / 1e6)

    train_data = _data_checked(BatchedData, encode_pairs(splits.train, src_tok, tgt_tok, max_len=config.data.max_len),
                               batch_tokens=config.train.batch_tokens, batch_size=config.train.batch_size, seed=config.train.seed)
    valid_examples = encode_pairs([(s, t) for s, t in splits.valid if s], src_tok, tgt_tok)
    valid_batches = [make_batch([valid_examples[i] for i in b]) for b in bucket(valid_examples, batch_tokens=max(config.train.batch_tokens, 2000), batch_size=config.train.batch_size, shuffle=False)]
    valid_groups = corpora.group_by_source(splits.valid)[: config.train.valid_bleu_sentences]

    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    translator = Translator(model, src_tok, tgt_tok, device=device)
    loss_fn = partial(_batch_loss, label_smoothing=config.train.label_smoothing)
    callbacks = [
        DeviceCallback(device), StopOnSignal(), SkipNonFiniteLoss(), GradientClip(config.train.clip_norm),
        StopRule(max_steps=config.train.max_steps, time_budget=config.train.time_budget * 60),
        Validator(loss_batches=valid_batches, loss_fn=partial(_batch_loss, label_smoothing=0.0),
                  sources=[s for s, _ in valid_groups], references=[refs for _, refs in valid_groups],
                  translate=partial(translator.translate, batch_size=128), bleu=bleu, every=config.train.valid_every),
        EarlyStopping(config.train.patience),
        Checkpointer(run_dir, lambda: {"config": config.to_dict(), "tokenizers": tokenizers_payload(src_tok, tgt_tok)}),
        MetricsLog(run_dir / "metrics.jsonl", every=config.train.log_every),
        ProgressBar(lambda epoch: len(train_data.epoch_batches(epoch))),
    ]
    if config.train.scheduler == "inverse_sqrt":
        callbacks.append(InverseSqrtSchedule(config.train.lr, config.train.warmup))
    elif config.train.scheduler == "plateau":
        callbacks.append(PlateauSchedule(optimizer))

    learner = Learner(model, batches=lambda epoch, start: train_data.batches(epoch, start=start), loss_fn=loss_fn,
                      optimizer=optimizer, callbacks=callbacks, teacher_forcing=config.train.teacher_forcing)
    if checkpoint is not None:
        _restore_progress(learner, checkpoint)
        log.info("resumed %s at step %d (epoch %d, batch %d)", run_dir / "last.pt", learner.step, learner.epoch + 1, learner.batch_in_epoch)
    try:
        learner.fit(config.train.epochs)
    except torch.cuda.OutOfMemoryError:
        raise TrainingError(_out_of_memory(learner, config.train)) from None

    if learner.interrupted:
        name = signal.Signals(learner.callback(StopOnSignal).received).name
        raise Interrupted(f"stopped by {name} at step {learner.step}; {run_dir / 'last.pt'} is saved. "
                          f"Continue with: {resume_command(run_dir, config)}")
    return run_dir


def _data_checked(make, *args, **kwargs):
    """``make(*args, **kwargs)``, where a ValueError means the data and the options do not fit
    (a vocabulary too small for the characters, no pair within --max-len): a TrainingError."""
    try:
        return make(*args, **kwargs)
    except ValueError as e:
        raise TrainingError(str(e)) from None


def _out_of_memory(learner: Learner, train_config: TrainConfig) -> str:
    budget = ("--batch-tokens", train_config.batch_tokens) if train_config.batch_tokens else ("--batch-size", train_config.batch_size)
    batch = getattr(learner, "batch", None)
    size = f" with a batch of {len(batch)} sentences, {batch.n_tokens} target tokens" if batch is not None else ""
    return (f"out of GPU memory at step {learner.step + 1}{size}: lower {budget[0]} (now {budget[1]}); "
            f"the checkpoints on disk are from the last save")


def resume_command(run_dir: Path, config: Config) -> str:
    """The command that continues this run: --resume restores everything but the stopping
    rule, which is given again."""
    words = ["train_nmt.py", "--resume", "--run-dir", str(run_dir)]
    for name in ("epochs", "max_steps", "time_budget"):
        value = getattr(config.train, name)
        if value != getattr(TrainConfig, name):
            words += ["--" + name.replace("_", "-"), str(value)]
    return shlex.join(words)


class Interrupted(RuntimeError):
    pass


def _batch_loss(logits, batch, *, label_smoothing: float):
    return sequence_loss(logits, batch.trg_out, label_smoothing=label_smoothing)


def _restore_progress(learner: Learner, checkpoint: dict) -> None:
    learner.opt.load_state_dict(checkpoint["optimizer"])
    progress = checkpoint["progress"]
    learner.step, learner.epoch, learner.batch_in_epoch = progress["step"], progress["epoch"], progress["batch_in_epoch"]
    learner.metrics = progress["metrics"]
    for cb in learner.callbacks:
        state = checkpoint["callbacks"].get(type(cb).__name__)
        if state:
            cb.load_state_dict(state)
    set_rng_state(checkpoint["rng"])


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status: 0 trained, 1 a failure (corpus, checkpoint, training, disk), 2 bad options,
    130 interrupted; every expected failure is one line on stderr."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        run_dir = train(make_config(args), resume=args.resume)
    except Interrupted as e:
        print(str(e), file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training started
        print("interrupted: nothing saved since the last checkpoint", file=sys.stderr)
        return 130
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (corpora.CorpusError, CheckpointError, TrainingError, OSError) as e:  # OSError: e.g. a full disk under metrics.jsonl
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"checkpoints: {run_dir / 'best.pt'} (best validation BLEU), {run_dir / 'last.pt'} (latest)")
    return 0
