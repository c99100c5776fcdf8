"""Faults during training: signals, killed writes, non-finite losses, full disks, out of memory,
and checkpoints that are damaged, crafted or from elsewhere."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nmt.corpora import read_corpus
from nmt.train import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def corpus(real_corpus, tmp_path_factory) -> Path:
    """200 short real English/French pairs as a tab file."""
    pairs = [(en, fr) for en, fr in read_corpus(real_corpus) if len(en.split()) <= 4]
    path = tmp_path_factory.mktemp("corpus") / "short.txt"
    path.write_text("".join(f"{en}\t{fr}\n" for en, fr in pairs[::len(pairs) // 200][:200]), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """--threads sets torch's thread count for the whole process; later tests expect the default."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def tiny_run(corpus, run_dir, *extra) -> list[str]:
    """Flags for a tiny RNN that trains in about a second. One thread: results are then
    bit-for-bit the same in a subprocess and in this process."""
    return ["--corpus", str(corpus), "--src", "en", "--tgt", "fr", "--tokenizer", "word", "--emb-size", "16",
            "--enc-hidden", "16", "--dec-hidden", "32", "--valid-size", "10", "--test-size", "0",
            "--valid-bleu-sentences", "10", "--batch-tokens", "0", "--batch-size", "16", "--threads", "1",
            "--run-dir", str(run_dir), *extra]


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def train_losses(run_dir: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["train_loss"]) for r in records(run_dir) if "train_loss" in r]


def validations(run_dir: Path) -> list[tuple[int, float, float]]:
    return [(r["step"], r["valid_loss"], r["valid_bleu"]) for r in records(run_dir) if "valid_bleu" in r]


def wait_for_step(run_dir: Path, step: int, process: subprocess.Popen) -> None:
    """Until metrics.jsonl shows training past ``step``: a signal then lands mid-training."""
    metrics = run_dir / "metrics.jsonl"
    while process.poll() is None:
        if metrics.exists() and any(s >= step for s, _ in train_losses(run_dir)):
            return
        time.sleep(0.01)
    pytest.fail(f"training ended (exit {process.returncode}) before step {step}: {process.stderr.read()}")


def start_training(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "train_nmt.py"), *argv], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# What resuming must restore, all exercised: dropout (the RNG), a plateau schedule and early
# stopping (their state; this run stops early, after about 100 steps), validation every 7
# steps (mid-epoch), and a training loss logged at every step.
RESUMABLE = ("--dropout", "0.3", "--scheduler", "plateau", "--patience", "12", "--valid-every", "7",
             "--log-every", "1", "--max-steps", "150")


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    assert main(tiny_run(corpus, run_dir, *RESUMABLE)) == 0
    return run_dir


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_run_saves_last_pt_and_resumes_exactly_like_an_uninterrupted_one(corpus, uninterrupted, tmp_path, sig):
    interrupted = start_training(tiny_run(corpus, tmp_path / "interrupted", *RESUMABLE))
    wait_for_step(tmp_path / "interrupted", 5, interrupted)
    interrupted.send_signal(sig)
    _, stderr = interrupted.communicate(timeout=60)
    assert interrupted.returncode == 130, stderr
    stopped_at = torch.load(tmp_path / "interrupted" / "last.pt", weights_only=True)["progress"]["step"]
    assert 5 <= stopped_at < 150
    assert f"at step {stopped_at}" in stderr.splitlines()[-1] and "--resume" in stderr.splitlines()[-1]
    assert "Traceback" not in stderr

    assert main(tiny_run(corpus, tmp_path / "interrupted", *RESUMABLE, "--resume")) == 0

    assert train_losses(tmp_path / "interrupted") == train_losses(uninterrupted)
    assert validations(tmp_path / "interrupted") == validations(uninterrupted)
    assert stopped_at < train_losses(uninterrupted)[-1][0]
    resumed = torch.load(tmp_path / "interrupted" / "last.pt", weights_only=True)
    whole = torch.load(uninterrupted / "last.pt", weights_only=True)
    assert resumed["model"].keys() == whole["model"].keys()
    assert all(torch.equal(resumed["model"][k], whole["model"][k]) for k in whole["model"])
