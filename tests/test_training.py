"""Training end to end: the copy task is learned, checkpoints round-trip and resume, runs repeat."""

import json
import re

import pytest
import torch

from nmt.callbacks import GradientClip
from nmt.checkpoint import load_checkpoint, load_model
from nmt.commands.train import main
from nmt.config import Config, DataConfig, ModelConfig, TrainConfig
from nmt.corpora import load_corpus
from nmt.training import train
from nmt.translator import Translator


def copy_task_config(corpus, run_dir, **train_overrides) -> Config:
    return Config(
        data=DataConfig(corpus=str(corpus), src="en", trg="en", tokenizer="word", valid_size=25, test_size=0),
        model=ModelConfig(emb_size=64, enc_hidden=64, dec_hidden=128, dropout=0.0),
        train=TrainConfig(
            **{
                "lr": 3e-3,
                "batch_tokens": 0,
                "batch_size": 32,
                "epochs": 40,
                "patience": 0,
                "run_dir": str(run_dir),
                "valid_bleu_sentences": 25,
                "scheduler": "none",
                **train_overrides,
            }
        ),
    )


@pytest.fixture(scope="module")
def copy_run(short_sentences, tmp_path_factory):
    """30 epochs: about 10 s on an idle 2-core CPU."""
    run_dir = tmp_path_factory.mktemp("copy")
    train(copy_task_config(short_sentences, run_dir, epochs=30))
    return run_dir


def test_a_tiny_model_learns_to_copy_500_real_sentences(copy_run, short_sentences):
    translator = Translator.from_checkpoint(copy_run / "last.pt")
    sentences = [src for src, _ in load_corpus(translator.config.data).train]  # the 25 held out for validation excepted
    copies = translator.translate(sentences, batch_size=100)
    exact = sum(c == s for c, s in zip(copies, sentences)) / len(sentences)
    print(f"copy task exact match: {exact:.1%} of {len(sentences)}")
    assert len(sentences) >= 470 and exact >= 0.95


def test_the_checkpoint_round_trips_exactly(copy_run):
    ckpt = load_checkpoint(copy_run / "last.pt")
    model, src_tok, trg_tok, config = load_model(copy_run / "last.pt")
    assert config.to_dict() == ckpt["config"]
    assert src_tok is trg_tok  # autoencoder: one vocabulary
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, ckpt["model"][name]), name
    assert src_tok.to_dict() == ckpt["tokenizers"]["src"]


def test_best_checkpoint_holds_what_translation_needs_and_no_optimizer(copy_run):
    best = load_checkpoint(copy_run / "best.pt")
    assert {"config", "tokenizers", "model"} <= set(best) and "optimizer" not in best
    records = [json.loads(line) for line in (copy_run / "metrics.jsonl").read_text().splitlines()]
    assert max(r["valid_bleu"] for r in records if "valid_bleu" in r) == pytest.approx(
        best["progress"]["metrics"]["valid_bleu"]
    )


def losses(run_dir):
    return [
        r["train_loss"]
        for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
        if "train_loss" in r
    ]


def test_same_seed_same_data_gives_identical_losses(short_sentences, tmp_path):
    for name in ("a", "b"):
        train(copy_task_config(short_sentences, tmp_path / name, max_steps=30))
    assert losses(tmp_path / "a") == losses(tmp_path / "b")


def test_a_resumed_run_continues_exactly_like_an_uninterrupted_one(short_sentences, tmp_path):
    whole = copy_task_config(short_sentences, tmp_path / "whole", max_steps=40)
    whole.model.dropout = 0.3  # dropout draws random numbers: the RNG state must be restored too
    train(whole)
    halves = copy_task_config(short_sentences, tmp_path / "halves", max_steps=25)
    halves.model.dropout = 0.3
    train(halves)
    halves.train.max_steps = 40
    train(halves, resume=True)
    a = load_checkpoint(tmp_path / "whole" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "halves" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_adam_averages_squared_gradients_with_the_configured_beta2(short_sentences, tmp_path):
    train(copy_task_config(short_sentences, tmp_path, max_steps=2, adam_beta2=0.98))
    groups = load_checkpoint(tmp_path / "last.pt")["optimizer"]["param_groups"]
    assert all(tuple(group["betas"]) == (0.9, 0.98) for group in groups)


def test_command_line_trains_and_prints_where_the_checkpoint_is(short_sentences, tmp_path, capsys):
    code = main(
        [
            "--corpus",
            str(short_sentences),
            "--tokenizer",
            "word",
            "--max-steps",
            "3",
            "--valid-size",
            "10",
            "--test-size",
            "0",
            "--emb-size",
            "16",
            "--enc-hidden",
            "16",
            "--dec-hidden",
            "16",
            "--run-dir",
            str(tmp_path / "cli"),
            "--valid-bleu-sentences",
            "10",
        ]
    )
    assert code == 0
    assert re.search(r"checkpoints: .*best\.pt", capsys.readouterr().out)
    assert (tmp_path / "cli" / "best.pt").is_file()


def test_resuming_a_finished_run_with_the_same_limit_does_nothing_but_say_so(short_sentences, tmp_path, caplog):
    config = copy_task_config(short_sentences, tmp_path, max_steps=10)
    train(config)
    before = {name: (tmp_path / name).read_bytes() for name in ("last.pt", "best.pt", "metrics.jsonl")}
    with caplog.at_level("INFO", logger="nmt"):
        train(config, resume=True)
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    assert "the run is already complete (step 10" in caplog.text


def test_gradient_clipping_scales_the_whole_gradient_to_the_norm_and_leaves_small_ones_alone():
    model = torch.nn.Linear(4, 3)
    clip = GradientClip(max_norm=0.5)
    clip.learner = type("Learner", (), {"model": model})()
    for p in model.parameters():
        p.grad = torch.full_like(p, 10.0)
    direction = torch.cat([p.grad.flatten() for p in model.parameters()])
    clip.after_backward()
    clipped = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert clipped.norm().item() == pytest.approx(0.5, rel=1e-5)
    torch.testing.assert_close(clipped / clipped.norm(), direction / direction.norm())  # same direction
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.01)
    clip.after_backward()
    assert all(torch.equal(p.grad, torch.full_like(p, 0.01)) for p in model.parameters())
