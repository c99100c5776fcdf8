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
from nmt.checkpoint import CheckpointError, load_checkpoint, restore_model, tokenizers_payload
from nmt.config import Config, DataConfig, ModelConfig, TrainConfig
from nmt.data import BatchedData, bucket, encode_pairs, make_batch
from nmt.evaluate import bleu
from nmt.learner import Learner
from nmt.loss import sequence_loss
from nmt.seq2seq import build_model
from nmt.tokenizers import build_tokenizers
from nmt.translator import Translator

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
    "layers": "RNN layers; for the Transformer, encoder and decoder layers unless --enc-layers/--dec-layers say otherwise",
}
ALIASES = {"ff_size": ["--ff"]}
FLAG_NAMES = {("data", "seed"): "--data-seed"}  # --seed is the training seed

# What a Transformer needs to learn fast on a small CPU; used unless a flag or config file says otherwise.
TRANSFORMER_DEFAULTS = {
    "model": {"dropout": 0.1},
    "train": {"scheduler": "inverse_sqrt", "lr": 2e-3, "warmup": 800, "label_smoothing": 0.1},
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_nmt.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="JSON or TOML file with data/model/train sections")
    parser.add_argument("--autoencoder", action="store_true", help="reconstruct the source: target language = source language")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last.pt")
    parser.add_argument("--verbose", action="store_true")
    for section, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
        group = parser.add_argument_group(section)
        for f in dataclasses.fields(cls):
            flags = [FLAG_NAMES.get((section, f.name), "--" + f.name.replace("_", "-"))] + ALIASES.get(f.name, [])
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
        raise SystemExit(f"error: {path}: cannot read config ({e})")


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
        raise SystemExit(f"error: {e}")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda asked for, but no CUDA device is available")
    return device


def check_run_dir(run_dir: Path) -> None:
    """Fail before training, not at the first save, when checkpoints cannot be written."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"\0" * 1024)
        probe.unlink()
    except OSError as e:
        raise SystemExit(f"error: cannot write checkpoints to {run_dir}: {e.strerror or e}")


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
        src_tok, tgt_tok = build_tokenizers(splits.train, config.data)
        model = build_model(config.model, src_vocab_size=len(src_tok), trg_vocab_size=len(tgt_tok), shared_vocab=src_tok is tgt_tok)
    log.info("vocabulary: %d source, %d target%s; model: %s, %.2fM parameters", len(src_tok), len(tgt_tok),
             " (joint)" if src_tok is tgt_tok else "", config.model.arch, sum(p.numel() for p in model.parameters()) / 1e6)

    train_data = BatchedData(encode_pairs(splits.train, src_tok, tgt_tok, max_len=config.data.max_len),
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
    elif config.train.scheduler != "none":
        raise SystemExit(f"error: unknown scheduler {config.train.scheduler!r}: choose plateau, inverse_sqrt or none")

    learner = Learner(model, batches=lambda epoch, start: train_data.batches(epoch, start=start), loss_fn=loss_fn,
                      optimizer=optimizer, callbacks=callbacks, teacher_forcing=config.train.teacher_forcing)
    if checkpoint is not None:
        _restore_progress(learner, checkpoint)
        log.info("resumed %s at step %d (epoch %d, batch %d)", run_dir / "last.pt", learner.step, learner.epoch + 1, learner.batch_in_epoch)
    learner.fit(config.train.epochs)

    if learner.interrupted:
        name = signal.Signals(learner.callback(StopOnSignal).received).name
        raise Interrupted(f"stopped by {name} at step {learner.step}; {run_dir / 'last.pt'} is saved. "
                          f"Continue with: {resume_command(config)}")
    return run_dir


def resume_command(config: Config) -> str:
    """The command that continues this run: --resume restores everything but the stopping
    rule, which is given again."""
    words = ["train_nmt.py", "--resume", "--run-dir", config.train.run_dir]
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
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    config = make_config(args)
    try:
        run_dir = train(config, resume=args.resume)
    except Interrupted as e:
        print(str(e), file=sys.stderr)
        return 130
    except (corpora.CorpusError, CheckpointError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"checkpoints: {run_dir / 'best.pt'} (best validation BLEU), {run_dir / 'last.pt'} (latest)")
    return 0
