"""nmt compare: each system's BLEU and chrF with a 95% interval, and p-values of the difference,
on real French references with outputs damaged in known ways."""

import random

import pytest
import sacrebleu

from nmt.__main__ import main
from nmt.readers import read_corpus
from nmt.significance import compare


@pytest.fixture(scope="module")
def sentences(real_corpus):
    """(English, French) pairs: 240 of under 12 words and 60 of 12 or more, real ones."""
    short, long = [], []
    for en, fr in read_corpus(real_corpus):
        (long if len(en.split()) >= 12 else short).append((en, fr))
    rng = random.Random(0)
    return rng.sample(short, 240) + rng.sample(long, 60)


def damaged(french: list[str], every: int, first: int = 0) -> list[str]:
    """The references with the last two words of every ``every``-th sentence (from ``first``)
    dropped: a system whose errors are known."""
    return [" ".join(s.split()[:-2]) if i % every == first else s for i, s in enumerate(french)]


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


@pytest.fixture
def files(sentences, tmp_path):
    french = [fr for _, fr in sentences]
    return {
        "src": write(tmp_path / "src.en", [en for en, _ in sentences]),
        "ref": write(tmp_path / "ref.fr", french),
        "worse": write(tmp_path / "worse.fr", damaged(french, 2)),
        "better": write(tmp_path / "better.fr", damaged(french, 10)),
    }


def test_a_clearly_better_system_has_its_scores_intervals_and_a_small_p_value(files, capsys):
    assert main(["compare", files["worse"], files["better"], "--ref", files["ref"]]) == 0
    out = capsys.readouterr().out
    worse, better = (
        sacrebleu.corpus_bleu(open(files[k]).read().splitlines(), [open(files["ref"]).read().splitlines()])
        for k in ("worse", "better")
    )
    assert f"{worse.score:6.2f} ± " in out and f"{better.score:6.2f} ± " in out
    assert "(baseline)" in out
    assert "paired bootstrap: 1000 resamples; approximate randomization: 10000 trials; seed 12345" in out
    assert "BLEU: nrefs:1|bs:1000|seed:12345|" in out and "chrF2: " in out


def test_an_empty_line_in_a_reference_file_is_no_reference(sentences, tmp_path, capsys):
    """Sentences with fewer references than others: their lines of the later files are empty."""
    french = [fr for _, fr in sentences]
    second = [damaged(french, 1)[i] if i % 3 == 0 else "" for i in range(len(french))]
    ref2 = write(tmp_path / "ref2.fr", second)
    hyp = write(tmp_path / "hyp.fr", damaged(french, 2))
    assert main(["compare", hyp, hyp, "--ref", write(tmp_path / "ref.fr", french), ref2]) == 0
    out = capsys.readouterr().out
    ragged = [[ref] + ([other] if other else []) for ref, other in zip(french, second)]
    streams = [[r[k] if k < len(r) else None for r in ragged] for k in range(2)]
    expected = sacrebleu.corpus_bleu(damaged(french, 2), streams)
    assert expected.score != sacrebleu.corpus_bleu(damaged(french, 2), [french, second]).score
    assert f"{expected.score:6.2f} ± " in out and "BLEU: nrefs:var|" in out


def test_the_p_value_is_small_for_a_real_difference_and_large_for_none(sentences):
    french = [fr for _, fr in sentences]
    refs = [[fr] for fr in french]
    result = compare([("worse", damaged(french, 2)), ("better", damaged(french, 10))], refs)
    bleu = result.systems[1].metrics["BLEU"]
    assert bleu.p_bootstrap < 0.01 and bleu.p_randomization < 0.01
    alike = compare([("a", damaged(french, 3)), ("b", damaged(french, 3, first=1))], refs)  # as many errors
    assert (
        alike.systems[1].metrics["BLEU"].p_bootstrap > 0.05 and alike.systems[1].metrics["BLEU"].p_randomization > 0.05
    )
    low, high = bleu.score - bleu.ci, bleu.score + bleu.ci
    assert 0 < bleu.ci < 10 and low < bleu.score < high


def test_the_same_seed_gives_the_same_figures(sentences):
    refs = [[fr] for _, fr in sentences]
    systems = [("a", damaged([fr for _, fr in sentences], 3)), ("b", damaged([fr for _, fr in sentences], 4))]
    assert str(compare(systems, refs, seed=7)) == str(compare(systems, refs, seed=7))


def test_with_the_sources_long_sentences_are_compared_apart(files, capsys):
    assert main(["compare", files["worse"], files["better"], "--ref", files["ref"], "--source", files["src"]]) == 0
    out = capsys.readouterr().out
    assert "all: 300 sentences" in out and "sources of 12+ words: 60 sentences" in out


def test_files_of_other_lengths_are_one_line_naming_the_file(files, tmp_path, capsys):
    short = write(tmp_path / "short.fr", ["un"] * 5)
    assert main(["compare", files["worse"], short, "--ref", files["ref"]]) == 1
    assert capsys.readouterr().err == f"error: {short} has 5 lines but {files['ref']} has 300\n"
    assert main(["compare", files["worse"], "--ref", files["ref"]]) == 2
    assert "give two files of translations or more" in capsys.readouterr().err


def test_outputs_identical_to_the_baselines_are_said_to_be_so_not_given_p_values(sentences):
    french = [fr for _, fr in sentences]
    result = compare([("a", damaged(french, 3)), ("b", damaged(french, 3))], [[fr] for fr in french])
    assert result.systems[1].identical and "(the same outputs as the first)" in str(result)


@pytest.mark.parametrize(
    "flags, tokenizer", [([], "13a"), (["--tgt", "zh"], "zh"), (["--tgt", "fr", "--bleu-tokenize", "char"], "char")]
)
def test_bleus_tokenizer_follows_the_target_language_or_the_flag(files, capsys, flags, tokenizer):
    args = ["compare", files["worse"], files["better"], "--ref", files["ref"], "--samples", "10", "--trials", "10"]
    assert main([*args, *flags]) == 0
    assert f"|tok:{tokenizer}|" in capsys.readouterr().out


def test_a_bad_target_language_is_a_usage_error(files, capsys):
    assert main(["compare", files["worse"], files["better"], "--ref", files["ref"], "--tgt", "french"]) == 2
    assert "--tgt 'french': not an ISO 639-1 or 639-3 code" in capsys.readouterr().err
