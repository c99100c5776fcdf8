"""Weight averaging (EMA during training, checkpoint averaging after it), the schedule that decays
to the end of the run, and the learning-curve plot, on tiny runs over the demo corpus."""

import math

import pytest
import torch
from training_runs import records

from nmt.__main__ import main as nmt_main
from nmt.averaging import ExponentialMovingAverage, average_checkpoints
from nmt.callbacks import Checkpointer, step_checkpoints
from nmt.checkpoint import load_checkpoint, load_model, save_checkpoint, tokenizers_payload
from nmt.commands.train import train
from nmt.config import Config, ConfigError, DataConfig, ModelConfig, TrainConfig
from nmt.corpora import demo_pairs
from nmt.data import Share, share_of
from nmt.learner import Learner
from nmt.loss import sequence_loss
from nmt.models import build_model
from nmt.schedules import DeadlineSchedule, TeacherForcingSchedule
from nmt.vocab import Lang

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


@pytest.fixture(scope="module")
def kept_run(tmp_path_factory):
    """24 steps, validating every 6 and keeping the last 3 models."""
    run_dir = tmp_path_factory.mktemp("kept")
    train(tiny_config(run_dir, max_steps=24, valid_every=6, keep_checkpoints=3))
    return run_dir


def test_a_run_keeps_the_models_of_its_last_validations(kept_run):
    assert [path.name for path in step_checkpoints(kept_run)] == ["step-12.pt", "step-18.pt", "step-24.pt"]


def test_the_average_of_identical_checkpoints_is_that_checkpoint(kept_run):
    path = kept_run / "step-24.pt"
    averaged = average_checkpoints([path, path, path])
    original = load_checkpoint(path)
    assert averaged["config"] == original["config"] and averaged["tokenizers"] == original["tokenizers"]
    for name, tensor in original["model"].items():
        assert torch.equal(averaged["model"][name], tensor), name


def test_the_average_is_the_mean_of_the_weights_and_translates(kept_run, tmp_path):
    paths = step_checkpoints(kept_run)[-2:]
    assert nmt_main(["average", str(kept_run), "--last", "2", "-o", str(tmp_path / "average.pt")]) == 0
    model, *_ = load_model(tmp_path / "average.pt")
    a, b = (load_checkpoint(path)["model"] for path in paths)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, (a[name] + b[name]) / 2, rtol=1e-6, atol=1e-7)
    best = sorted(step_checkpoints(kept_run), key=lambda p: load_checkpoint(p)["progress"]["metrics"]["valid_bleu"])
    assert nmt_main(["average", str(kept_run), "--best", "1", "-o", str(tmp_path / "best.pt")]) == 0
    assert torch.equal(
        load_checkpoint(tmp_path / "best.pt")["model"]["decoder.out_proj.bias"],
        load_checkpoint(best[-1])["model"]["decoder.out_proj.bias"],
    )


def test_checkpoints_of_different_models_or_vocabularies_are_refused(kept_run, tmp_path, capsys):
    ckpt = load_checkpoint(kept_run / "step-24.pt")
    other_vocab = {**ckpt, "tokenizers": {**ckpt["tokenizers"], "shared": not ckpt["tokenizers"]["shared"]}}
    save_checkpoint(tmp_path / "vocab.pt", other_vocab)
    wider = {**ckpt, "config": {**ckpt["config"], "model": {**ckpt["config"]["model"], "dec_hidden": 65}}}
    save_checkpoint(tmp_path / "model.pt", wider)
    for other, word in (("vocab.pt", "vocabularies"), ("model.pt", "a different model")):
        status = nmt_main(
            ["average", str(kept_run / "step-24.pt"), str(tmp_path / other), "-o", str(tmp_path / "x.pt")]
        )
        err = capsys.readouterr().err.strip()
        assert status == 1 and len(err.splitlines()) == 1 and word in err and not (tmp_path / "x.pt").exists()
    assert nmt_main(["average", str(kept_run), "--last", "9", "-o", str(tmp_path / "x.pt")]) == 2
    assert "fewer than 9" in capsys.readouterr().err


def test_an_ema_with_decay_0_is_the_plain_weights():
    pairs = demo_pairs(n=64)
    lang = Lang.build([s for pair in pairs for s in pair], name="en+fr")
    examples = [(lang.encode(en), lang.encode(fr)) for en, fr in pairs]
    batches = [share_of(range(i, i + 16), examples, Share()) for i in range(0, 64, 16)]
    model = build_model(TINY, lang, lang)
    ema = ExponentialMovingAverage(model, decay=0.0)
    learner = Learner(
        model,
        batches=lambda epoch, start: batches[start:],
        loss_fn=lambda logits, batch: sequence_loss(logits, batch.trg_out),
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        callbacks=[ema],
    )
    learner.fit(2)
    assert learner.published is ema.averaged and learner.step == 8
    for mean, weight in zip(ema.averaged.parameters(), model.parameters()):
        assert torch.equal(mean, weight)


def test_an_ema_run_validates_and_saves_the_average_and_resumes_exactly(tmp_path):
    train(tiny_config(tmp_path / "whole", max_steps=16, valid_every=4, ema=0.9))
    train(tiny_config(tmp_path / "split", max_steps=8, valid_every=4, ema=0.9))
    train(tiny_config(tmp_path / "split", max_steps=16, valid_every=4, ema=0.9), resume=True)
    whole, split = (load_checkpoint(tmp_path / run / "last.pt") for run in ("whole", "split"))
    trained = whole["callbacks"]["ExponentialMovingAverage"]["trained"]
    assert any(not torch.equal(whole["model"][name], trained[name]) for name in trained)  # "model" is the average
    for name in trained:
        assert torch.equal(whole["model"][name], split["model"][name]), name
        assert torch.equal(trained[name], split["callbacks"]["ExponentialMovingAverage"]["trained"][name]), name


def test_the_deadline_schedule_warms_up_and_ends_at_its_floor_at_the_last_step(tmp_path):
    run_dir = tmp_path / "run"
    train(tiny_config(run_dir, max_steps=20, scheduler="cosine", warmup=4, lr_floor=0.05, lr=1e-2))
    rates = [r["lr"] for r in records(run_dir) if "lr" in r]
    assert len(rates) == 20
    assert rates[0] == pytest.approx(1e-2 / 4 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi / 20))))
    assert max(rates) == rates[3] and rates[-1] == pytest.approx(1e-2 * 0.05)
    assert all(a >= b for a, b in zip(rates[3:], rates[4:]))


@pytest.mark.parametrize("shape", ["linear", "cosine"])
def test_the_deadline_rate_falls_from_the_peak_to_the_floor(shape):
    schedule = DeadlineSchedule(2.0, warmup=0, shape=shape, floor=0.1, epochs=1, batches_per_epoch=lambda epoch: 100)
    assert schedule.rate(1, 0.0) == pytest.approx(2.0)
    assert schedule.rate(50, 0.5) == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))
    assert schedule.rate(100, 1.0) == schedule.rate(200, 1.7) == pytest.approx(0.2)


def test_without_a_step_or_time_limit_the_deadline_is_the_last_epoch(tmp_path):
    run_dir = tmp_path / "run"
    train(tiny_config(run_dir, epochs=2, scheduler="linear", warmup=0, lr_floor=0.1, lr=1e-2))
    rates = [r["lr"] for r in records(run_dir) if "lr" in r]
    assert rates[-1] == pytest.approx(1e-3) and rates[0] > rates[len(rates) // 2] > rates[-1]


def test_the_plot_command_draws_the_learning_curves_of_real_runs(kept_run, tmp_path):
    assert all("minutes" in r for r in records(kept_run) if "step" in r)
    output = tmp_path / "curves.png"
    assert nmt_main(["plot", str(kept_run), str(kept_run), "-o", str(output)]) == 0
    assert output.read_bytes().startswith(b"\x89PNG") and output.stat().st_size > 10_000


def test_a_saved_checkpoint_loads_into_the_very_model_that_was_trained_in_memory(tmp_path):
    pairs = demo_pairs(n=64)
    lang = Lang.build([s for pair in pairs for s in pair], name="en+fr")
    examples = [(lang.encode(en), lang.encode(fr)) for en, fr in pairs]
    batches = [share_of(range(i, i + 16), examples, Share()) for i in range(0, 64, 16)]
    config = tiny_config(tmp_path)
    model = build_model(config.model, lang, lang)
    payload = {"config": config.to_dict(), "tokenizers": tokenizers_payload(lang, lang)}
    learner = Learner(
        model,
        batches=lambda epoch, start: batches[start:],
        loss_fn=lambda logits, batch: sequence_loss(logits, batch.trg_out),
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        callbacks=[Checkpointer(tmp_path, lambda: payload)],
    )
    learner.fit(1)
    loaded, *_ = load_model(tmp_path / "last.pt")
    trained = model.state_dict()
    assert loaded.state_dict().keys() == trained.keys()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, trained[name]), name


@pytest.mark.parametrize(
    "shape, k, step, expected",
    [
        ("constant", 1000, 1, 0.75),
        ("linear", 100, 50, 0.5),
        ("linear", 100, 90, 0.25),  # the floor
        ("exponential", 0.99, 10, 0.99**10),
        ("inverse_sigmoid", 10, 20, 10 / (10 + math.exp(2))),
    ],
)
def test_scheduled_sampling_decays_the_reference_probability_to_its_floor(shape, k, step, expected):
    floor = 0.75 if shape == "constant" else 0.25
    assert TeacherForcingSchedule(shape, k=k, floor=floor).probability(step) == pytest.approx(expected)


def test_scheduled_sampling_is_refused_for_the_transformer_and_needs_a_k_that_fits_its_schedule():
    with pytest.raises(ConfigError, match="scheduled sampling\\) is for the RNN"):
        Config(model=ModelConfig(arch="transformer"), train=TrainConfig(teacher_forcing=0.9))
    with pytest.raises(ConfigError, match="the exponential schedule needs 0 < k < 1"):
        TrainConfig(teacher_forcing=0.5, teacher_forcing_schedule="exponential", teacher_forcing_k=5)


def test_with_label_smoothing_the_training_curve_is_the_plain_cross_entropy_and_the_objective_is_beside_it(tmp_path):
    train(tiny_config(tmp_path, max_steps=6, label_smoothing=0.2))
    lines = [r for r in records(tmp_path) if "train_loss" in r]
    assert len(lines) == 6 and all(r["train_smoothed_loss"] != r["train_loss"] > 0 for r in lines)
    train(tiny_config(tmp_path / "plain", max_steps=6, label_smoothing=0.0))
    assert all("train_smoothed_loss" not in r for r in records(tmp_path / "plain"))
