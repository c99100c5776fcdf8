"""nmt.corpora: readers, normalisation, fetch, demo corpus, filters, direction and splits.

Small format cases use files written into tmp_path; split, direction and reading behaviour are
shown on the real Tatoeba archive, read once per module.
"""

import hashlib
import logging
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmt.__main__ import main
from nmt.config import DataConfig
from nmt.corpora import (
    DEMO,
    dedup,
    demo_pairs,
    filter_length,
    filter_prefix,
    group_by_source,
    load_corpus,
    number_pair,
    orient,
    resolve_corpus,
    split_pairs,
)
from nmt.download import fetch
from nmt.readers import read_corpus
from nmt.text import CorpusError, normalize

REAL_LINES = 163_258  # lines of fra.txt in the shared archive


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


@pytest.fixture(scope="module")
def real_pairs(real_corpus) -> list[tuple[str, str]]:
    return read_corpus(real_corpus)


@pytest.fixture(scope="module")
def real_splits(real_pairs):
    return split_pairs(real_pairs, valid_size=2000, test_size=2500, seed=1234)


# ---------------------------------------------------------------------------------------------
# Normalisation


def test_normalize_folds_unicode_spaces_and_keeps_accents_and_case():
    assert normalize("  Ça  va\u202f?  ") == "Ça va ?"
    assert normalize("Il\u00a0fait\u2009beau\t!\n") == "Il fait beau !"


def test_normalize_composes_accents_to_nfc():
    assert normalize("C\u0327a a e\u0301te\u0301") == "\u00c7a a \u00e9t\u00e9"


def test_normalize_drops_zero_width_space_and_soft_hyphen():
    assert normalize("Bon\u200bjour, extra\u00adordinaire") == "Bonjour, extraordinaire"


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_normalize_is_idempotent_and_leaves_single_inner_spaces(text):
    once = normalize(text)
    assert normalize(once) == once
    assert once == once.strip(" ") and "  " not in once
    assert not any(c.isspace() and c != " " for c in once)


# ---------------------------------------------------------------------------------------------
# Readers


@pytest.mark.parametrize(
    "name, content",
    [
        ("fra.txt", "The cat sleeps.\tLe chat dort.\nWhere is the café?\tOù est le café\u202f?\n"),
        (
            "fra.txt",  # newer manythings files carry an attribution column
            "The cat sleeps.\tLe chat dort.\tCC-BY 2.0 (France) Attribution: tatoeba.org #1 (a) & #2 (b)\n"
            "Where is the café?\tOù est le café\u202f?\tCC-BY 2.0 (France) Attribution: tatoeba.org #3 (c) & #4 (d)\n",
        ),
        ("eng-fra.txt", "The cat sleeps.\tLe chat dort.\nWhere is the café?\tOù est le café\u202f?\n"),
        ("eng-fra.txt", "\ufeffThe cat sleeps.\tLe chat dort.\r\nWhere is the café?\tOù est le café\u202f?\r\n"),
    ],
    ids=["fra.txt", "fra.txt with attribution", "eng-fra.txt", "windows line ends and BOM"],
)
def test_tab_files_give_normalised_english_french_pairs_in_file_order(tmp_path, name, content):
    path = write(tmp_path / name, content)
    expected = [("The cat sleeps.", "Le chat dort."), ("Where is the café?", "Où est le café ?")]
    assert read_corpus(path) == expected
    assert read_corpus(path) == expected


def test_zip_archive_is_read_without_extracting(tmp_path):
    archive = tmp_path / "fra-eng.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # the d2l mirror keeps both files in a folder
        zf.writestr("fra-eng/_about.txt", "licence text, not sentences")
        zf.writestr("fra-eng/fra.txt", "Hello.\tBonjour.\nThank you.\tMerci.\n")
    assert read_corpus(archive) == [("Hello.", "Bonjour."), ("Thank you.", "Merci.")]
    assert read_corpus(archive) == read_corpus(archive)
    assert [p.name for p in tmp_path.iterdir()] == ["fra-eng.zip"]


def test_zip_without_a_sentence_file_is_an_error(tmp_path):
    archive = tmp_path / "fra-eng.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("_about.txt", "licence only")
    with pytest.raises(CorpusError, match=r"fra-eng\.zip: expected one \*\.txt sentence file"):
        read_corpus(archive)


def test_real_zip_reads_every_line_and_matches_its_extracted_fra_txt(real_corpus, real_pairs, tmp_path):
    with zipfile.ZipFile(real_corpus) as zf:
        extracted = write(tmp_path / "fra.txt", zf.read("fra.txt"))
    assert len(real_pairs) == REAL_LINES
    assert read_corpus(extracted) == real_pairs
    assert all(pair == (normalize(pair[0]), normalize(pair[1])) for pair in real_pairs)


def test_parallel_files_pair_line_k_with_line_k(tmp_path):
    en = write(tmp_path / "train.en", "Hello.\nThank you\u00a0!\n")
    fr = write(tmp_path / "train.fr", "Bonjour.\nMerci\u202f!\n")
    expected = [("Hello.", "Bonjour."), ("Thank you !", "Merci !")]
    assert read_corpus((en, fr)) == expected
    assert read_corpus((en, fr)) == expected


def test_lang_pattern_names_a_pair_of_parallel_files(tmp_path):
    en = write(tmp_path / "train.en", "Hello.\n")
    fr = write(tmp_path / "train.fr", "Bonjour.\n")
    assert resolve_corpus(str(tmp_path / "train.{lang}")) == (en, fr)
    de = write(tmp_path / "train.de", "Hallo.\n")
    assert resolve_corpus(str(tmp_path / "train.{lang}"), langs=("de", "en")) == (de, en)


# ---------------------------------------------------------------------------------------------
# Bad input: one line naming the file and the line

BAD_INPUTS = {
    "no tab": ({"fra.txt": "Hello.\tBonjour.\nThank you. Merci.\n"}, "fra.txt", ["fra.txt line 2: no tab"]),
    "not utf-8": ({"fra.txt": b"Hi.\tSalut.\nYes.\tOui.\nSo?\tCaf\xe9 ?\n"}, "fra.txt", ["fra.txt line 3: not UTF-8"]),
    "empty file": ({"fra.txt": ""}, "fra.txt", ["fra.txt: empty file"]),
    "empty side": (
        {"fra.txt": "Hi.\tSalut.\nYes.\t \u00a0\n"},
        "fra.txt",
        ["fra.txt line 2: empty sentence in the second column"],
    ),
    "four columns": ({"fra.txt": "Hi.\tSalut.\tsomeone\textra\n"}, "fra.txt", ["fra.txt line 1: 4 tab-separated"]),
    "unequal parallel": (
        {"a.en": "Hi.\nYes.\nNo.\n", "a.fr": "Salut.\nOui.\n"},
        ("a.en", "a.fr"),
        ["a.en has 3 lines", "a.fr has 2", "a.en line 3 has no partner in"],
    ),
    "empty parallel side": (
        {"a.en": "Hi.\n\n", "a.fr": "Salut.\nOui.\n"},
        ("a.en", "a.fr"),
        ["a.en line 2: empty line"],
    ),
    "parallel not utf-8": ({"a.en": "Hi.\n", "a.fr": b"\xff\n"}, ("a.en", "a.fr"), ["a.fr line 1: not UTF-8"]),
    "empty parallel file": ({"a.en": "", "a.fr": ""}, ("a.en", "a.fr"), ["a.en: empty file"]),
}


@pytest.mark.parametrize("files, source, fragments", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_raises_one_line_naming_file_and_line(tmp_path, files, source, fragments):
    for name, content in files.items():
        write(tmp_path / name, content)
    source = tuple(tmp_path / s for s in source) if isinstance(source, tuple) else tmp_path / source
    with pytest.raises(CorpusError) as error:
        read_corpus(source)
    message = str(error.value)
    assert "\n" not in message
    assert all(fragment in message for fragment in fragments), message


def test_bad_line_inside_a_zip_names_archive_member_and_line(tmp_path):
    archive = tmp_path / "fra-eng.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fra.txt", "Hi.\tSalut.\nbroken line\n")
    with pytest.raises(CorpusError, match=r"fra-eng\.zip:fra\.txt line 2: no tab"):
        read_corpus(archive)


def test_skip_bad_lines_keeps_good_pairs_and_reports_the_count(tmp_path, caplog):
    path = write(tmp_path / "fra.txt", b"Hi.\tSalut.\nno tab\nYes.\tOui.\nSo?\tCaf\xe9\nNo.\t\nThanks.\tMerci.\n")
    with caplog.at_level(logging.WARNING, logger="nmt.corpora"):
        pairs = read_corpus(path, skip_bad_lines=True)
    assert pairs == [("Hi.", "Salut."), ("Yes.", "Oui."), ("Thanks.", "Merci.")]
    assert f"skipped 3 bad lines in {path} (first at line 2)" in caplog.messages


def test_skipping_a_bad_parallel_line_drops_both_sides_and_keeps_alignment(tmp_path, caplog):
    en = write(tmp_path / "a.en", b"Hi.\n\n\xff\nThanks.\n")
    fr = write(tmp_path / "a.fr", b"Salut.\nOui.\n\xff\nMerci.\n")
    with caplog.at_level(logging.WARNING, logger="nmt.corpora"):
        assert read_corpus((en, fr), skip_bad_lines=True) == [("Hi.", "Salut."), ("Thanks.", "Merci.")]
    assert f"skipped 2 bad lines in {en} + {fr} (first at line 2)" in caplog.messages


def test_a_file_of_only_bad_lines_is_an_error_even_when_skipping(tmp_path):
    path = write(tmp_path / "fra.txt", "no tab\nnone here either\n")
    with pytest.raises(CorpusError, match=r"fra\.txt: no usable sentence pairs \(2 bad lines skipped\)"):
        read_corpus(path, skip_bad_lines=True)


# ---------------------------------------------------------------------------------------------
# Fetch and name resolution


def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_fetch_offline_says_where_to_place_the_file_by_hand(tmp_path, monkeypatch):
    offline(monkeypatch)
    with pytest.raises(CorpusError) as error:
        fetch("eng-fra", tmp_path)
    message = str(error.value)
    assert "\n" not in message and "no network" in message
    assert f"place it at {(tmp_path / 'fra-eng.zip').resolve()}" in message
    assert list(tmp_path.iterdir()) == []


def test_fetch_checksum_mismatch_leaves_nothing_behind(tmp_path):
    served = write(tmp_path / "served.zip", b"not the archive you are looking for")
    dest = tmp_path / "corpora"
    with pytest.raises(CorpusError, match="checksum mismatch"):
        fetch("eng-fra", dest, url=served.as_uri(), sha1="94646ad1522d915e7b0f9296181140edcf86a4f5")
    assert list(dest.iterdir()) == []


def test_fetch_downloads_a_verified_file_into_place(tmp_path):
    served = write(tmp_path / "served.zip", b"archive bytes")
    sha1 = hashlib.sha1(b"archive bytes").hexdigest()
    path = fetch("eng-fra", tmp_path / "corpora", url=served.as_uri(), sha1=sha1)
    assert path == tmp_path / "corpora" / "fra-eng.zip"
    assert path.read_bytes() == b"archive bytes"
    assert list(path.parent.iterdir()) == [path]


def test_fetch_uses_a_file_already_in_place_as_is(tmp_path, monkeypatch):
    offline(monkeypatch)
    placed = write(tmp_path / "fra-eng.zip", b"a copy the user placed by hand")
    assert fetch("eng-fra", tmp_path) == placed
    assert resolve_corpus("eng-fra", tmp_path) == placed
    assert placed.read_bytes() == b"a copy the user placed by hand"


def test_cli_fetch_prints_the_path_or_exits_with_the_error(tmp_path, monkeypatch, capsys):
    offline(monkeypatch)
    with pytest.raises(SystemExit) as exit_:
        main(["fetch", "eng-fra", "--dest", str(tmp_path)])
    assert exit_.value.code == 1
    assert "place it at" in capsys.readouterr().err

    placed = write(tmp_path / "fra-eng.zip", b"placed")
    main(["fetch", "eng-fra", "--dest", str(tmp_path)])
    assert capsys.readouterr().out.strip() == str(placed)


def test_resolve_corpus_knows_demo_and_rejects_missing_files(tmp_path):
    assert resolve_corpus("demo", tmp_path) == DEMO
    with pytest.raises(CorpusError, match="corpus not found: .*missing.txt"):
        resolve_corpus(str(tmp_path / "missing.txt"), tmp_path)
    write(tmp_path / "train.en", "Hello.\n")
    with pytest.raises(CorpusError, match="corpus not found: .*train.fr"):
        resolve_corpus(str(tmp_path / "train.{lang}"), tmp_path)


# ---------------------------------------------------------------------------------------------
# Demo corpus


@pytest.mark.parametrize(
    "number, english, french",
    [
        (342, "three hundred and forty-two", "trois cent quarante-deux"),
        (80, "eighty", "quatre-vingts"),
        (71, "seventy-one", "soixante et onze"),
        (1000, "one thousand", "mille"),
    ],
)
def test_number_pair_gives_real_english_and_french_number_words(number, english, french):
    assert number_pair(number) == (english, french)


def test_demo_pairs_are_distinct_and_drawn_by_the_seed():
    pairs = demo_pairs(n=300, seed=7)
    assert len(set(pairs)) == 300
    assert demo_pairs(n=300, seed=7) == pairs
    assert demo_pairs(n=300, seed=8) != pairs


def test_demo_corpus_splits_with_held_out_sizes_capped_and_logged(caplog):
    with caplog.at_level(logging.INFO, logger="nmt.corpora"):
        splits = load_corpus(DataConfig(corpus="demo"))
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (4000, 500, 500)
    assert "valid/test capped at 500/500" in caplog.text


# ---------------------------------------------------------------------------------------------
# Filters


def test_dedup_drops_repeated_pairs_keeping_first_occurrence_order():
    pairs = [("Hi.", "Salut."), ("Hi.", "Bonjour."), ("Hi.", "Salut."), ("No.", "Non.")]
    assert dedup(pairs) == [("Hi.", "Salut."), ("Hi.", "Bonjour."), ("No.", "Non.")]


def test_prefix_filter_matches_tutorial_prefixes_in_any_case_and_apostrophe_form():
    kept = ["I am cold.", "I'm cold.", "He's tall.", "you\u2019re late.", "THEY ARE here.", "She is.", "We're in."]
    dropped = ["I amble home.", "Tom is here.", "Hesitate.", "Are you sure?"]
    pairs = [(english, "x") for english in kept + dropped]
    assert [english for english, _ in filter_prefix(pairs)] == kept


def test_length_filter_counts_words_on_both_sides():
    pairs = [("Go.", "Va !"), ("I am cold.", "J'ai froid."), ("Yes.", "Oui, bien sûr.")]
    assert filter_length(pairs, min_len=2, max_len=3) == [("I am cold.", "J'ai froid.")]


# ---------------------------------------------------------------------------------------------
# Direction and autoencoder mode (real corpus)


def test_fr_to_en_swaps_the_sides(real_pairs):
    assert orient(real_pairs, ("en", "fr"), "fr", "en") == [(fr, en) for en, fr in real_pairs]
    assert orient(real_pairs, ("en", "fr"), "en", "fr") == real_pairs


def test_three_letter_codes_name_the_same_languages_as_two_letter_ones(real_pairs):
    assert orient(real_pairs, ("eng", "fra"), "fr", "en") == orient(real_pairs, ("en", "fr"), "fra", "eng")
    assert orient(real_pairs, ("eng", "fra"), "fr", "en") == [(fr, en) for en, fr in real_pairs]


@pytest.mark.parametrize("lang, side", [("en", 0), ("fr", 1)])
def test_autoencoder_pairs_each_distinct_sentence_with_itself(real_pairs, lang, side):
    pairs = orient(real_pairs, ("en", "fr"), lang, lang)
    sentences = list(dict.fromkeys(pair[side] for pair in real_pairs))
    assert pairs == [(s, s) for s in sentences]
    assert len(pairs) < len(real_pairs)  # sentences with several translations appear once


def test_unknown_language_code_is_a_clear_error():
    with pytest.raises(CorpusError, match="no de side: this corpus has en and fr"):
        orient([("Hi.", "Salut.")], ("en", "fr"), "en", "de")


# ---------------------------------------------------------------------------------------------
# Splits (real corpus)


def test_group_by_source_keeps_first_seen_order():
    pairs = [("b", "1"), ("a", "2"), ("b", "3")]
    assert group_by_source(pairs) == [("b", ["1", "3"]), ("a", ["2"])]


def test_split_sizes_count_source_sentences(real_splits):
    assert len(group_by_source(real_splits.valid)) == 2000
    assert len(group_by_source(real_splits.test)) == 2500
    assert len(real_splits.test) > 2500  # some sources bring several references


def test_split_leaks_no_source_sentence_between_splits(real_pairs, real_splits):
    sources = [{src for src, _ in split} for split in (real_splits.train, real_splits.valid, real_splits.test)]
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
    assert sum(map(len, sources)) == len({src for src, _ in real_pairs})


def test_split_keeps_every_reference_of_a_source_in_one_split(real_pairs, real_splits):
    all_references = dict(group_by_source(real_pairs))
    test_groups = group_by_source(real_splits.test)
    assert any(len(refs) > 1 for _, refs in test_groups)
    for split in (real_splits.train, real_splits.valid, real_splits.test):
        assert all(refs == all_references[src] for src, refs in group_by_source(split))


def test_split_is_determined_by_the_seed(real_pairs, real_splits):
    assert split_pairs(real_pairs, valid_size=2000, test_size=2500, seed=1234) == real_splits
    other = split_pairs(real_pairs, valid_size=2000, test_size=2500, seed=99)
    assert other.test != real_splits.test


def test_test_split_does_not_depend_on_valid_size(real_pairs, real_splits):
    assert split_pairs(real_pairs, valid_size=100, test_size=2500, seed=1234).test == real_splits.test


def test_split_refuses_to_leave_nothing_for_training():
    with pytest.raises(CorpusError, match="cannot hold out 1 valid \\+ 1 test source sentences from 2"):
        split_pairs([("a", "1"), ("b", "2")], valid_size=1, test_size=1, seed=0)


# ---------------------------------------------------------------------------------------------
# load_corpus (real corpus)


def test_load_corpus_filters_length_in_train_only_and_logs_counts(real_corpus, caplog):
    cfg = DataConfig(corpus=str(real_corpus), src="fr", trg="en", max_len=5)
    with caplog.at_level(logging.INFO, logger="nmt.corpora"):
        splits = load_corpus(cfg)

    def longest(pairs):
        return max(len(side.split()) for pair in pairs for side in pair)

    assert longest(splits.train) <= 5 < min(longest(splits.valid), longest(splits.test))
    assert len(group_by_source(splits.test)) == 2500
    assert f"{REAL_LINES} pairs read from {real_corpus} (0 bad lines skipped)" in caplog.text
    assert "fr->en pairs" in caplog.text and "outside 1..5 words dropped" in caplog.text


def test_load_corpus_reports_skipped_lines_and_autoencoder_sides(tmp_path, caplog):
    lines = [f"Sentence number {k}.\tPhrase numéro {k}." for k in range(40)] + ["a bad line"]
    path = write(tmp_path / "fra.txt", "\n".join(lines))
    cfg = DataConfig(corpus=str(path), src="fr", trg="fr", skip_bad_lines=True)
    with caplog.at_level(logging.INFO, logger="nmt.corpora"):
        splits = load_corpus(cfg)
    assert "40 pairs read" in caplog.text and "(1 bad lines skipped)" in caplog.text
    everything = splits.train + splits.valid + splits.test
    assert sorted(everything) == sorted((f"Phrase numéro {k}.",) * 2 for k in range(40))
