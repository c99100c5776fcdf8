"""nmt evaluate --report and --compare: where a model gains and loses, and whether another
checkpoint's difference is real, on tiny models of real English-French sentences."""

import pytest
from tiny_checkpoints import train_tiny

from nmt.analysis import FREQUENCY_BUCKETS, bleu_by_length, differ_most, word_f_by_frequency
from nmt.commands.evaluate import main
from nmt.config import ModelConfig


@pytest.fixture(scope="module")
def checkpoints(corpus, tmp_path_factory):
    """Two models of the same corpus and split, of different sizes; and one of another corpus."""
    wider = ModelConfig(emb_size=48, enc_hidden=48, dec_hidden=96, dropout=0.0)
    return {
        "short": train_tiny(tmp_path_factory.mktemp("short"), corpus=str(corpus), steps=40),
        "long": train_tiny(tmp_path_factory.mktemp("long"), corpus=str(corpus), steps=40, model=wider),
        "other corpus": train_tiny(tmp_path_factory.mktemp("demo"), steps=10),
    }


def evaluate(capsys, *args):
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_word_f_measure_is_grouped_by_the_words_frequency_in_training():
    training = ["le chat dort", "le chien dort", "le chat mange"]  # le 3, chat 2, dort 2, chien 1, mange 1
    [output], [refs] = ["le chat mange une souris"], [["le chien mange une souris ."]]
    buckets = {b.name: b for b in word_f_by_frequency([output], [refs], training)}
    # unseen in training: une, souris (output and reference) and "." (reference only)
    assert buckets["0"].reference_words == 3 and buckets["0"].precision == 1.0 and buckets["0"].recall == 2 / 3
    assert buckets["1"].reference_words == 2 and buckets["1"].recall == 1 / 2  # mange found, chien missed
    assert buckets["2-4"].precision == 1 / 2  # le right, chat not in the reference
    assert [b.name for b in word_f_by_frequency([output], [refs], training)] == ["0", "1", "2-4"]
    assert FREQUENCY_BUCKETS[0] == (0, 0)


def test_with_several_references_a_sentence_is_matched_against_its_closest():
    [bucket] = word_f_by_frequency(["il fait froid"], [["j'ai froid", "il fait froid"]], [])
    assert bucket.precision == bucket.recall == 1.0


def test_bleu_by_length_puts_each_sentence_in_its_sources_bucket():
    sources = ["a b", "a b c d e f g", "a b c d e f g h i j k l m"]
    buckets = bleu_by_length(["x y z"] * 3, [["x y z"]] * 3, sources)
    assert [(b.name, b.sentences) for b in buckets] == [("1-5", 1), ("6-8", 1), ("12-15", 1)]


def test_differ_most_lists_the_sentences_whose_scores_part_most():
    refs = [["Il fait froid."], ["Je suis là."], ["Merci."]]
    first, second = ["Il fait froid.", "Je suis ici.", "Merci."], ["Il pleut.", "Je suis là.", "Merci."]
    rows = differ_most(["a", "b", "c"], refs, first, second, n=5)
    assert [r.source for r in rows] == ["a", "b"]  # identical outputs are no difference
    assert rows[0].chrf[0] == 100.0 and rows[0].chrf[1] < rows[1].chrf[0]


def test_report_prints_bleu_by_length_and_words_by_training_frequency(checkpoints, capsys):
    status, out, _ = evaluate(capsys, "--checkpoint", checkpoints["long"], "--report", "--beam", "1")
    assert status == 0
    assert "BLEU by source length (words):" in out and "sentences" in out
    assert "output words by frequency in training (F-measure, precision, recall):" in out
    assert "reference words  F " in out


def test_compare_tests_another_checkpoint_of_the_same_split(checkpoints, capsys):
    status, out, _ = evaluate(
        capsys, "--checkpoint", checkpoints["short"], "--compare", checkpoints["long"], "--report", "--examples", "2"
    )
    assert status == 0
    assert f"  {checkpoints['short']}" in out and "(baseline)" in out
    assert f"  {checkpoints['long']}" in out and "bootstrap / randomization" in out
    assert "paired bootstrap: 1000 resamples; approximate randomization: 10000 trials; seed 12345" in out
    assert out.count("  chrF ") >= 2  # the sentences where the two differ most, each system's output


def test_compare_refuses_a_checkpoint_of_another_corpus(checkpoints, capsys):
    status, _, err = evaluate(capsys, "--checkpoint", checkpoints["short"], "--compare", checkpoints["other corpus"])
    assert status == 1
    assert err.strip().splitlines() == [
        f"error: {checkpoints['other corpus']} was not trained on the corpus and split of {checkpoints['short']}: "
        "compare them on a file instead (nmt translate, then nmt compare)"
    ]
