"""Scores (sacrebleu), the reconstruction report, and python -m nmt.evaluate on tiny demo models."""

import pytest
import torch
from tiny_checkpoints import train_tiny

from nmt.checkpoint import load_checkpoint
from nmt.commands.evaluate import main, mark_first_difference
from nmt.corpora import demo_pairs, group_by_source, load_corpus
from nmt.metrics import reconstruction, score, token_accuracy
from nmt.translator import Translator
from nmt.vocab import tokenize


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    """The demo corpus as a tab file, so that a checkpoint's corpus can be moved."""
    path = tmp_path_factory.mktemp("corpus") / "numbers.txt"
    path.write_text("".join(f"{en}\t{fr}\n" for en, fr in demo_pairs()), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def translation_checkpoint(tmp_path_factory, demo_file):
    return train_tiny(tmp_path_factory.mktemp("en-fr"), corpus=str(demo_file))


@pytest.fixture(scope="module")
def autoencoder_checkpoint(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("en-en"), trg="en")


def evaluate(capsys, *args):
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_hypothesis_matching_any_of_its_references_scores_100():
    scores = score(["Je suis là.", "Il pleut."], [["Je suis ici.", "Je suis là."], ["Il pleut."]])
    assert scores.bleu == pytest.approx(100.0) and scores.chrf == pytest.approx(100.0) and scores.ter == 0.0
    assert "nrefs:var" in scores.signatures["BLEU"]  # sacrebleu's word for "not the same number everywhere"


def test_bleu_is_also_given_apart_for_short_and_long_sources():
    long_source = "one two three four five six seven eight nine ten eleven twelve"
    glad = "Je suis très content de te voir."
    scores = score(
        [glad, "Je ne sais pas."], [[glad], ["Je suis ici."]], sources=["I am glad to see you.", long_source]
    )
    short, long = scores.by_length
    assert (short.name, short.sentences, long.name, long.sentences) == ("under 12 words", 1, "12+ words", 1)
    assert short.bleu == pytest.approx(100.0) and long.bleu < 100.0
    assert "BLEU by source length: under 12 words (1 sentences) 100.00; 12+ words (1 sentences)" in str(scores)
    assert [g.name for g in score([glad], [[glad]], sources=["I am glad to see you."]).by_length] == ["under 12 words"]


def test_token_accuracy_counts_the_references_tokens_position_by_position():
    # "a x c" against "a b c d": a and c right, b wrong, d missing
    assert token_accuracy(["a x c"], ["a b c d"], tokens=str.split) == pytest.approx(2 / 4)
    # extra output tokens cost nothing here (exact match counts them)
    assert token_accuracy(["a b c d e"], ["a b c d"], tokens=str.split) == 1.0


def test_reconstruction_reports_exact_match_token_accuracy_and_bleu():
    inputs = ["I am cold.", "He is tall."]
    report = reconstruction(["I am cold.", "He is small."], inputs, tokens=tokenize)
    assert report.sentences == 2 and report.exact == 0.5
    assert report.token_accuracy == pytest.approx(7 / 8)  # "tall" -> "small"
    assert 0 < report.bleu < 100
    assert str(report).startswith("exact match 50.0%  token accuracy 87.5%  BLEU ")


@pytest.mark.parametrize(
    "output, marked",
    [
        ("He is small.", "He is [[small.]]"),
        ("He is", "He is [[]]"),
        ("He is tall. Yes.", "He is tall. [[Yes.]]"),
        ("He is tall.", "He is tall."),
    ],
)
def test_the_first_differing_word_is_marked(output, marked):
    assert mark_first_difference(output, "He is tall.") == marked


def test_evaluate_scores_the_checkpoints_own_test_split(translation_checkpoint, capsys):
    status, out, err = evaluate(capsys, "--checkpoint", translation_checkpoint, "--split", "test", "--beam", "2")
    assert status == 0, err
    # the same split, rebuilt here from the stored data settings, translated through the API
    translator = Translator.from_checkpoint(translation_checkpoint)
    groups = group_by_source(load_corpus(translator.config.data).test)
    sources = [s for s, _ in groups]
    expected = score(translator.translate(sources, beam_size=2), [refs for _, refs in groups], sources=sources)
    assert len(groups) == 40
    assert "test split of" in out and "40 sentences, 40 references; beam 2" in out
    assert str(expected) in out
    assert out.count("  source:      ") == 5


def test_a_moved_corpus_is_named_and_can_be_given_with_corpus(translation_checkpoint, demo_file, tmp_path, capsys):
    moved = tmp_path / "moved.pt"
    ckpt = load_checkpoint(translation_checkpoint)
    ckpt["config"]["data"]["corpus"] = str(tmp_path / "gone.txt")
    torch.save(ckpt, moved)
    status, out, err = evaluate(capsys, "--checkpoint", moved, "--limit", "3")
    assert status == 1 and "gone.txt" in err and "give its place with --corpus" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    status, out, err = evaluate(capsys, "--checkpoint", moved, "--limit", "3", "--corpus", demo_file)
    assert status == 0, err
    assert "3 sentences" in out


def test_reconstruction_reports_the_scores_and_marks_the_sentences_that_came_back_wrong(autoencoder_checkpoint, capsys):
    status, out, err = evaluate(capsys, "--checkpoint", autoencoder_checkpoint, "--reconstruction", "--examples", "3")
    assert status == 0, err
    translator = Translator.from_checkpoint(autoencoder_checkpoint)
    sources = [s for s, _ in group_by_source(load_corpus(translator.config.data).test)]
    outputs = translator.translate(sources, beam_size=5)
    assert str(reconstruction(outputs, sources, tokens=translator.trg_tok.tokens)) in out
    shown = [
        line.split(": ", 1)[1].strip()
        for line in out.splitlines()
        if line.strip().startswith(("input:", "reconstruction:"))
    ]
    wrong = [(s, o) for s, o in zip(sources, outputs) if s != o][:3]
    assert len(wrong) == 3  # a tiny model, a few steps: it makes mistakes to show
    assert shown == [x for s, o in wrong for x in (s, mark_first_difference(o, s))]
    assert all("[[" in line for line in shown[1::2])


def test_reconstruction_of_a_translation_model_is_refused(translation_checkpoint, capsys):
    status, out, err = evaluate(capsys, "--checkpoint", translation_checkpoint, "--reconstruction")
    assert status == 2 and out == ""
    assert err.strip() == (
        f"error: {translation_checkpoint} translates en->fr; --reconstruction needs an autoencoder "
        "(train_nmt.py --autoencoder)"
    )


def test_a_checkpoint_that_holds_out_no_test_sentences_says_so(translation_checkpoint, tmp_path, capsys):
    ckpt = load_checkpoint(translation_checkpoint)
    ckpt["config"]["data"]["test_size"] = 0
    torch.save(ckpt, tmp_path / "no-test.pt")
    status, _, err = evaluate(capsys, "--checkpoint", tmp_path / "no-test.pt")
    assert status == 1 and "the test split of" in err and "is empty" in err


def test_evaluate_refuses_a_corpus_that_is_not_the_one_the_checkpoint_was_trained_on(
    translation_checkpoint, demo_file, tmp_path, capsys
):
    lines = demo_file.read_text(encoding="utf-8").splitlines(keepends=True)
    one_pair_less = tmp_path / "numbers.txt"
    one_pair_less.write_text("".join(lines[1:]), encoding="utf-8")  # the split drawn from it would change
    status, out, err = evaluate(capsys, "--checkpoint", translation_checkpoint, "--corpus", one_pair_less)
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert f"{one_pair_less} is not the corpus {translation_checkpoint} was trained on" in err
    assert "translate.py" in err and "--ref" in err and "test split" not in out


def test_the_checkpoint_and_metrics_jsonl_record_the_corpus_fingerprint(translation_checkpoint, demo_file):
    recorded = load_checkpoint(translation_checkpoint)["corpus"]
    splits = load_corpus(Translator.from_checkpoint(translation_checkpoint).config.data)
    assert recorded == splits.fingerprint and recorded["test_pairs"] == len(splits.test)
    first = (translation_checkpoint.parent / "metrics.jsonl").read_text().splitlines()[0]
    assert f'"corpus_fingerprint": {{"pairs": {recorded["pairs"]},' in first
