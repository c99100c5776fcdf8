"""Experiment tracking: the metrics of a real (tiny) run reach TensorBoard and W&B (offline), and
what the training records measure."""

import json
import sys
from types import SimpleNamespace

import torch

from nmt import reporting
from nmt.commands.train import main
from nmt.config import Config, DataConfig, ModelConfig, TrainConfig
from nmt.reporting import MetricsLog
from nmt.training import train


def tiny_run(run_dir, **options) -> Config:
    return Config(
        data=DataConfig(corpus="demo", tokenizer="word", valid_size=20, test_size=20),
        model=ModelConfig(emb_size=32, enc_hidden=32, dec_hidden=64, dropout=0.0),
        train=TrainConfig(
            batch_tokens=0,
            batch_size=32,
            max_steps=6,
            valid_every=3,
            log_every=2,
            valid_bleu_sentences=20,
            run_dir=str(run_dir),
            **options,
        ),
    )


def test_tensorboard_gets_every_scalar_of_metrics_jsonl(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny_run(tmp_path, tensorboard=True))
    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    for name in ("train_loss", "lr", "valid_loss", "valid_bleu"):
        logged = {(e.step, round(e.value, 4)) for e in events.Scalars(name)}
        assert logged == {(r["step"], round(r[name], 4)) for r in records if name in r}, name
    assert "config" in events.Tags()["tensors"] or "config/text_summary" in events.Tags()["tensors"]


def test_wandb_offline_writes_a_run_with_the_metrics_and_never_the_network(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    train(tiny_run(tmp_path, wandb=True, wandb_project="nmt-tests"))
    [run] = (tmp_path / "wandb").glob("offline-run-*")
    assert list(run.glob("*.wandb"))  # the run's records, for `wandb sync`


def test_a_missing_tracker_package_is_one_line_naming_the_extra_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # what an uninstalled package looks like to importlib
    argv = ["--corpus", str(tmp_path / "no-such-corpus.txt"), "--wandb", "--run-dir", str(tmp_path / "run")]
    status = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err == ['error: --wandb needs the wandb package: pip install -e ".[wandb]"']


def test_training_tokens_per_second_leave_out_the_time_spent_validating(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(reporting.time, "monotonic", lambda: clock[0])
    records = []
    sink = SimpleNamespace(write=records.append, examples=lambda step, pairs: None, close=lambda: None)
    metrics = MetricsLog([sink], every=2)
    loss = torch.tensor(2.0)
    metrics.learner = learner = SimpleNamespace(
        step=0,
        epoch=0,
        elapsed=0.0,
        validating_seconds=0.0,
        batch=SimpleNamespace(n_tokens=100),
        loss=loss,
        cross_entropy=loss,
        skip_update=None,
        opt=SimpleNamespace(param_groups=[{"lr": 1e-3}]),
    )
    metrics.before_fit()
    clock[0] += 1.0  # the first update trains for a second,
    learner.step = 1
    metrics.after_step()
    clock[0] += 30.0  # then a validation and its checkpoints take half a minute,
    learner.validating_seconds += 30.0
    clock[0] += 1.0  # and the second update another second
    learner.step = 2
    metrics.after_step()
    assert records[-1]["tokens_per_s"] == 100.0
    assert records[-1]["train_loss"] == 2.0
