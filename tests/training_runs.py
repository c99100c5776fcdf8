"""Tiny training runs from the command line, and what their metrics.jsonl says: shared by the
tests of resuming, faults, schedules and several processes."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nmt.config import Config, DataConfig, ModelConfig, TrainConfig

ROOT = Path(__file__).resolve().parent.parent


def tiny_run(corpus, run_dir, *extra) -> list[str]:
    """Flags for a tiny RNN that trains in about a second. One thread: results are then
    bit-for-bit the same in a subprocess and in this process."""
    return [
        "--corpus",
        str(corpus),
        "--src",
        "en",
        "--tgt",
        "fr",
        "--tokenizer",
        "word",
        "--emb-size",
        "16",
        "--enc-hidden",
        "16",
        "--dec-hidden",
        "32",
        "--valid-size",
        "10",
        "--test-size",
        "0",
        "--valid-bleu-sentences",
        "10",
        "--batch-tokens",
        "0",
        "--batch-size",
        "16",
        "--threads",
        "1",
        "--run-dir",
        str(run_dir),
        *extra,
    ]


def records(run_dir: Path) -> list[dict]:
    text = (run_dir / "metrics.jsonl").read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]  # not a line still being written


def train_losses(run_dir: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["train_loss"]) for r in records(run_dir) if "train_loss" in r]


def validations(run_dir: Path) -> list[tuple[int, float, float]]:
    return [(r["step"], r["valid_loss"], r["valid_bleu"]) for r in records(run_dir) if "valid_bleu" in r]


def run_records(run_dir: Path) -> list[tuple]:
    """metrics.jsonl without what depends on the clock: every step's loss and rate, every validation."""
    return [
        (r["step"], r.get("train_loss"), r.get("lr"), r.get("valid_loss"), r.get("valid_bleu"), r.get("report"))
        for r in records(run_dir)
        if "step" in r
    ]


def wait_for_step(run_dir: Path, step: int, process: subprocess.Popen) -> None:
    """Until metrics.jsonl shows training past ``step``: a signal then lands mid-training."""
    metrics = run_dir / "metrics.jsonl"
    while process.poll() is None:
        if metrics.exists() and any(s >= step for s, _ in train_losses(run_dir)):
            return
        time.sleep(0.01)
    pytest.fail(f"training ended (exit {process.returncode}) before step {step}")


def start_training(argv: list[str], stderr: Path, program: tuple[str, ...] = ("train_nmt.py",)) -> subprocess.Popen:
    """train_nmt.py (or ``program``) in a subprocess; stderr goes to a file, as a pipe left unread
    could fill and stall it."""
    with open(stderr, "w") as f:
        return subprocess.Popen([sys.executable, *program, *argv], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=f)


TINY = ModelConfig(emb_size=32, enc_hidden=32, dec_hidden=64, dropout=0.0)


def tiny_config(run_dir, **train_options) -> Config:
    return Config(
        data=DataConfig(corpus="demo", tokenizer="word", valid_size=20, test_size=20),
        model=TINY,
        train=TrainConfig(
            **{
                "batch_tokens": 0,
                "batch_size": 32,
                "lr": 1e-2,
                "scheduler": "none",
                "valid_bleu_sentences": 20,
                "run_dir": str(run_dir),
                "log_every": 1,
                **train_options,
            }
        ),
    )
