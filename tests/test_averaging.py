"""Weight averaging: the moving average kept during training, and averaging saved checkpoints
after it; and a checkpoint that loads into the very model that was trained."""

import torch
from training_runs import TINY, tiny_config

from nmt.__main__ import main as nmt_main
from nmt.averaging import ExponentialMovingAverage, average_checkpoints
from nmt.callbacks import Checkpointer, step_checkpoints
from nmt.checkpoint import load_checkpoint, load_model, save_checkpoint, tokenizers_payload
from nmt.corpora import demo_pairs
from nmt.data import Share, share_of
from nmt.learner import Callback, Learner
from nmt.loss import sequence_loss
from nmt.models import build_model
from nmt.training import train
from nmt.validation import Validator
from nmt.vocab import Lang


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


def tiny_learner(callbacks, *, steps_data: int = 64):
    """A Learner over a tiny model of the demo corpus, in batches of 16 pairs."""
    pairs = demo_pairs(n=steps_data)
    lang = Lang.build([s for pair in pairs for s in pair], name="en+fr")
    examples = [(lang.encode(en), lang.encode(fr)) for en, fr in pairs]
    batches = [share_of(range(i, i + 16), examples, Share()) for i in range(0, steps_data, 16)]
    model = build_model(TINY, lang, lang)
    return model, lambda *cbs: Learner(
        model,
        batches=lambda epoch, start: batches[start:],
        loss_fn=lambda logits, batch: sequence_loss(logits, batch.trg_out),
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        callbacks=[*callbacks(model), *cbs],
    )


class WeightsAfterEachStep(Callback):
    order = 0  # after the moving average's own update (order -10)

    def __init__(self):
        self.seen = []

    def after_step(self):
        self.seen.append([p.detach().clone() for p in self.learner.model.parameters()])


def test_the_moving_average_is_decay_times_the_average_plus_the_rest_times_the_weights():
    decay = 0.6
    model, make = tiny_learner(lambda model: [ExponentialMovingAverage(model, decay)])
    start = [p.detach().clone() for p in model.parameters()]
    record = WeightsAfterEachStep()
    learner = make(record)
    learner.fit(2)
    expected = start
    for weights in record.seen:  # avg = d * avg + (1 - d) * w, after every update
        expected = [decay * a + (1 - decay) * w for a, w in zip(expected, weights)]
    averaged = list(learner.published.parameters())
    assert len(record.seen) == 8
    for got, want, last in zip(averaged, expected, record.seen[-1]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        assert not torch.equal(got, last)  # the average is not the last weights


def test_validation_scores_the_average_not_the_trained_weights():
    scored = []
    model, make = tiny_learner(lambda model: [ExponentialMovingAverage(model, 0.9)])
    validator = Validator(
        loss_batches=[],
        loss_fn=None,
        sources=["one"],
        references=[["un"]],
        translate=lambda scored_model, sources: scored.append(scored_model) or ["un"],
        bleu=lambda hypotheses, references: 0.0,
    )
    learner = make(validator)
    learner.fit(1)
    ema = learner.callback(ExponentialMovingAverage)
    assert scored and all(m is ema.averaged and m is not model for m in scored)


def test_last_0_is_refused_as_no_checkpoint_at_all(kept_run, tmp_path, capsys):
    assert nmt_main(["average", str(kept_run), "--last", "0", "-o", str(tmp_path / "x.pt")]) == 2
    assert capsys.readouterr().err == "error: --last / --best take at least 1 checkpoint, not 0\n"


def test_a_run_folder_that_does_not_exist_is_named(tmp_path, capsys):
    missing = tmp_path / "no-such-run"
    assert nmt_main(["average", str(missing), "--last", "2", "-o", str(tmp_path / "x.pt")]) == 1
    assert capsys.readouterr().err == f"error: {missing}: no such run folder\n"
    assert not (tmp_path / "x.pt").exists()


def test_last_n_of_a_checkpoint_file_says_it_takes_a_run_folder(kept_run, tmp_path, capsys):
    best = kept_run / "best.pt"
    assert nmt_main(["average", str(best), "--last", "2", "-o", str(tmp_path / "x.pt")]) == 2
    assert capsys.readouterr().err == f"error: {best} is a file: --last and --best take a run folder\n"
