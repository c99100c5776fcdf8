"""Experiment tracking: the metrics of a real (tiny) run reach TensorBoard and W&B (offline)."""

import json
import sys

from nmt.commands.train import main, train
from nmt.config import Config, DataConfig, ModelConfig, TrainConfig


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
