"""Any language pair: codes, columns, scripts, manythings.org archives of other pairs, and given
validation and test files. The corpora are number words built here, as the demo corpus is."""

import dataclasses
import hashlib
import logging
import re
import zipfile

import pytest
from num2words import num2words
from tiny_checkpoints import TINY_RNN

from nmt.commands import evaluate as evaluate_command
from nmt.commands import train as train_command
from nmt.config import Config, ConfigError, DataConfig, TrainConfig
from nmt.corpora import column_languages, group_by_source, load_corpus, resolve_corpus
from nmt.download import fetch
from nmt.languages import bleu_tokenizer, character_coverage, check_code, same_language, writing_script
from nmt.specials import UNK as UNK_ID
from nmt.text import CorpusError
from nmt.tokenizers import build_tokenizers
from nmt.training import train
from nmt.translator import Translator
from nmt.vocab import Lang

NUMBERS = range(1, 400, 2)
LETTERS = {"Latn": "[a-z]", "Cyrl": "[а-я]", "Hebr": "[\u05d0-\u05ea]", "Hans": "[\u4e00-\u9fff]"}
CHINESE_DIGITS = "零一二三四五六七八九"


def chinese_number(n: int) -> str:
    """``n`` (1..9999) in Chinese numerals: 305 -> 三百零五, 1010 -> 一千零一十, 12 -> 十二."""
    out, zero = [], False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = n // value % 10
        if digit:
            out += ["零"] * zero + [CHINESE_DIGITS[digit] + unit]
            zero = False
        elif out:
            zero = True
    text = "".join(out)
    return text[1:] if text.startswith("一十") else text


def english(n: int) -> str:
    return num2words(n, lang="en")


def test_chinese_numbers_are_written_as_in_chinese():
    assert [chinese_number(n) for n in (12, 20, 305, 342, 1001, 1010, 1100)] == [
        "十二",
        "二十",
        "三百零五",
        "三百四十二",
        "一千零一",
        "一千零一十",
        "一千一百",
    ]


# ---------------------------------------------------------------------------------------------
# Codes


@pytest.mark.parametrize("code", ["en", "de", "deu", "cmn", "zh-Hant", "cmn_Hans", "pt-BR"])
def test_iso_639_1_and_639_3_codes_are_accepted(code):
    assert check_code(code) == code
    DataConfig(src=code, trg="en")


@pytest.mark.parametrize("code", ["xx", "english", "EN", "e", "de-", "", "fr!"])
def test_anything_else_is_a_one_line_error_naming_the_flag(code):
    with pytest.raises(ConfigError, match=f"--src {code!r}: not an ISO 639-1 or 639-3 code"):
        DataConfig(src=code, trg="en")


def test_a_bad_code_on_the_command_line_exits_2_with_one_line(capsys, tmp_path):
    assert train_command.main(["--corpus", "demo", "--src", "english", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--src 'english': not an ISO 639-1 or 639-3 code" in err


def test_two_and_three_letter_codes_of_one_language_are_the_same_language():
    assert same_language("de", "deu") and same_language("zh", "cmn") and same_language("fr", "fra")
    assert not same_language("de", "en")
    assert DataConfig(src="deu", trg="de").autoencoder


def test_scripts_set_sentencepiece_coverage_and_bleu_tokenizer():
    assert [writing_script(c) for c in ("en", "ru", "he", "el", "zh", "ja")] == [
        "Latn",
        "Cyrl",
        "Hebr",
        "Grek",
        "Hans",
        "Jpan",
    ]
    assert character_coverage(["en", "ru"]) == 1.0 and character_coverage(["he"]) == 1.0
    assert character_coverage(["en", "zh"]) == 0.9995 and character_coverage(["cmn"]) == 0.9995
    assert bleu_tokenizer("zh") == "zh" and bleu_tokenizer("cmn") == "zh"
    assert bleu_tokenizer("ru") == "13a" and bleu_tokenizer("fr") == "13a"
    assert bleu_tokenizer("ja") in ("ja-mecab", "char")  # MeCab's when sacrebleu[ja] is installed


def test_bleu_tokenize_takes_only_sacrebleu_tokenizers():
    assert DataConfig(trg="zh").bleu_tokenizer() == "zh"
    assert DataConfig(trg="zh", bleu_tokenize="char").bleu_tokenizer() == "char"
    with pytest.raises(ConfigError, match="--bleu-tokenize 'words': choose auto, none, zh, 13a"):
        DataConfig(bleu_tokenize="words")


# ---------------------------------------------------------------------------------------------
# Which column holds which language


def write_manythings_zip(path, pairs) -> None:
    """An archive as manythings.org makes them: deu-eng.zip holds deu.txt (English first) and _about.txt."""
    other = path.name.split("-")[0]
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{other}.txt", "".join(f"{en}\t{x}\tCC-BY 2.0 (France) Attribution\n" for en, x in pairs))
        archive.writestr("_about.txt", "about")


@pytest.mark.parametrize(
    "name, columns",
    [
        ("deu-eng.zip", ("eng", "deu")),
        ("deu.txt", ("eng", "deu")),
        ("eng-fra.txt", ("eng", "fra")),
        ("rus-eng.tsv", ("rus", "eng")),
        ("train.tsv", ("de", "en")),  # no name to go by: --src first
    ],
)
def test_a_files_name_says_its_columns_languages(tmp_path, name, columns):
    path = tmp_path / name
    path.write_text("x\ty\n", encoding="utf-8")
    assert column_languages(str(path), path, DataConfig(src="de", trg="en")) == columns


def test_columns_option_overrides_the_name(tmp_path):
    path = tmp_path / "deu.txt"
    cfg = DataConfig(src="de", trg="en", columns="de,en")
    assert column_languages(str(path), path, cfg) == ("de", "en")
    with pytest.raises(ConfigError, match="--columns 'de': give the two columns' languages"):
        DataConfig(columns="de")


def test_a_language_the_corpus_lacks_is_a_clear_error(tmp_path):
    path = tmp_path / "deu-eng.zip"
    write_manythings_zip(path, [("One.", "Eins.")] * 3)
    with pytest.raises(CorpusError, match="no fr side: this corpus has eng and deu"):
        load_corpus(DataConfig(corpus=str(path), src="fr", trg="en"))


# ---------------------------------------------------------------------------------------------
# manythings.org archives of other pairs


def test_fetch_downloads_any_manythings_pair_and_checks_its_recorded_checksum(tmp_path):
    archive = tmp_path / "served" / "deu-eng.zip"
    archive.parent.mkdir()
    write_manythings_zip(archive, [("One.", "Eins."), ("Two.", "Zwei.")])
    corpora = tmp_path / "corpora"
    path = fetch("deu-eng", corpora, url=archive.as_uri())
    assert path == corpora / "deu-eng.zip" and path.read_bytes() == archive.read_bytes()
    sha1 = hashlib.sha1(archive.read_bytes()).hexdigest()
    assert (corpora / "deu-eng.zip.sha1").read_text() == f"{sha1}  deu-eng.zip\n"
    assert fetch("deu-eng", corpora) == path  # in place: checked, not downloaded again
    assert resolve_corpus("deu-eng", corpora) == path
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorpusError, match="deu-eng.zip changed since it was downloaded"):
        fetch("deu-eng", corpora)


def test_fetch_refuses_names_that_are_not_manythings_pairs(tmp_path):
    for name in ("eng-deu", "german", "de-en"):
        with pytest.raises(CorpusError, match="unknown corpus"):
            fetch(name, tmp_path)


def test_a_manythings_archive_of_another_pair_trains_in_either_direction(tmp_path):
    pairs = [(english(n).capitalize() + ".", num2words(n, lang="de").capitalize() + ".") for n in NUMBERS]
    archive = tmp_path / "deu-eng.zip"
    write_manythings_zip(archive, pairs)
    to_german = load_corpus(DataConfig(corpus=str(archive), src="en", trg="de", valid_size=10, test_size=10))
    to_english = load_corpus(DataConfig(corpus=str(archive), src="deu", trg="eng", valid_size=10, test_size=10))
    assert set(to_german.train + to_german.valid + to_german.test) == set(pairs)
    assert set(to_english.train + to_english.valid + to_english.test) == {(de, en) for en, de in pairs}


# ---------------------------------------------------------------------------------------------
# Three scripts, both directions, end to end


def tiny_config(run_dir, corpus, src, trg, **data) -> Config:
    return Config(
        data=DataConfig(corpus=str(corpus), src=src, trg=trg, valid_size=10, test_size=20, **data),
        model=TINY_RNN,
        train=TrainConfig(max_steps=30, batch_tokens=0, batch_size=32, lr=1e-2, scheduler="none", run_dir=str(run_dir)),
    )


@pytest.fixture(scope="module")
def three_scripts(tmp_path_factory):
    """Corpora in Cyrillic (parallel files), Hebrew (a tab file, --columns) and Chinese (a
    manythings.org archive): English number words beside the other language's."""
    root = tmp_path_factory.mktemp("scripts")
    (root / "numbers.en").write_text("".join(english(n) + "\n" for n in NUMBERS), encoding="utf-8")
    (root / "numbers.ru").write_text("".join(num2words(n, lang="ru") + "\n" for n in NUMBERS), encoding="utf-8")
    (root / "numbers.tsv").write_text(
        "".join(f"{num2words(n, lang='he')}\t{english(n)}\n" for n in NUMBERS), encoding="utf-8"
    )
    write_manythings_zip(root / "cmn-eng.zip", [(english(n), chinese_number(n)) for n in NUMBERS])
    return {
        "ru": (root / "numbers.{lang}", {"tokenizer": "word"}),
        "he": (root / "numbers.tsv", {"tokenizer": "word", "columns": "he,en"}),
        "zh": (root / "cmn-eng.zip", {"tokenizer": "spm", "vocab_size": 200}),
    }


@pytest.mark.parametrize("lang, script", [("ru", "Cyrl"), ("he", "Hebr"), ("zh", "Hans")])
@pytest.mark.parametrize("to_english", [False, True], ids=["from English", "to English"])
def test_a_pair_in_another_script_trains_translates_and_evaluates(
    three_scripts, tmp_path, capsys, lang, script, to_english
):
    corpus, data = three_scripts[lang]
    src, trg = (lang, "en") if to_english else ("en", lang)
    train(tiny_config(tmp_path, corpus, src, trg, **data))
    translator = Translator.from_checkpoint(tmp_path / "last.pt")
    test = group_by_source(load_corpus(translator.config.data).test)
    outputs = translator.translate([source for source, _ in test])
    assert len(outputs) == len(test) and re.search(LETTERS["Latn" if to_english else script], "".join(outputs))

    assert evaluate_command.main(["--checkpoint", str(tmp_path / "last.pt"), "--examples", "0"]) == 0
    out = capsys.readouterr().out
    tokenizer = "zh" if trg == "zh" else "13a"
    assert f"({src}->{trg}): 20 sentences" in out and f"tok:{tokenizer}" in out


def test_chinese_subwords_leave_the_rarest_characters_out_of_the_vocabulary(three_scripts):
    corpus, data = three_scripts["zh"]
    cfg = tiny_config("unused", corpus, "en", "zh", **data).data
    pairs = load_corpus(cfg).train + [("dragon", "龘")]  # a character seen once, among thousands
    by_script, _ = build_tokenizers(pairs, cfg)
    every_character, _ = build_tokenizers(pairs, dataclasses.replace(cfg, character_coverage=1.0))
    assert UNK_ID in by_script.encode("龘") and UNK_ID not in every_character.encode("龘")
    assert by_script.decode(by_script.encode("三百四十二")) == "三百四十二"  # the common ones keep their pieces


def test_the_word_vocabulary_round_trips_every_script(three_scripts):
    for sentence in ("триста сорок два", "שלוש מאות ארבעים ושתיים", "三百四十二。", "τριακόσια σαράντα δύο"):
        lang = Lang.build([sentence], name="x")
        assert lang.decode(lang.encode(sentence)) == sentence


# ---------------------------------------------------------------------------------------------
# Given validation and test files


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


@pytest.fixture
def parallel(tmp_path):
    """A tab-file corpus of 200 numbers, and given valid and test files of other numbers."""
    corpus = tmp_path / "numbers.tsv"
    corpus.write_text("".join(f"{english(n)}\t{num2words(n, lang='de')}\n" for n in NUMBERS), encoding="utf-8")
    given = {}
    for split, numbers in (("valid", range(1000, 1010)), ("test", range(2000, 2012))):
        given[split] = (
            write_lines(tmp_path / f"{split}.en", [english(n) for n in numbers]),
            write_lines(tmp_path / f"{split}.de", [num2words(n, lang="de") for n in numbers]),
        )
    return corpus, given


def test_given_valid_and_test_files_replace_the_random_split_as_they_are(parallel):
    corpus, given = parallel
    cfg = DataConfig(corpus=str(corpus), src="en", trg="de", valid_files=given["valid"], test_files=given["test"])
    splits = load_corpus(cfg)
    assert splits.test == [(english(n), num2words(n, lang="de")) for n in range(2000, 2012)]
    assert len(splits.valid) == 10 and len(splits.train) == len(NUMBERS)  # nothing held out of the corpus
    assert "test_files_sha256" in splits.fingerprint and "valid_files_sha256" in splits.fingerprint
    only_test = load_corpus(DataConfig(corpus=str(corpus), src="en", trg="de", test_files=given["test"], valid_size=5))
    assert len(group_by_source(only_test.valid)) == 5 and len(only_test.train) == len(NUMBERS) - 5


def test_training_pairs_whose_source_is_in_the_given_test_set_are_dropped(parallel, tmp_path, caplog):
    corpus, _ = parallel
    test = (write_lines(tmp_path / "t.en", [english(1), english(3)]), write_lines(tmp_path / "t.de", ["eins", "drei"]))
    with caplog.at_level(logging.INFO, logger="nmt.corpora"):
        splits = load_corpus(DataConfig(corpus=str(corpus), src="en", trg="de", test_files=test, valid_size=5))
    assert not {english(1), english(3)} & {src for src, _ in splits.train + splits.valid}
    assert f"{len(NUMBERS) - 2} with no source in the given test files" in caplog.text


def test_given_files_flags_and_toml_lists_make_the_same_config(parallel, tmp_path):
    corpus, given = parallel
    toml = tmp_path / "run.toml"
    toml.write_text(f'[data]\ntest_files = ["{given["test"][0]}", "{given["test"][1]}"]\n', encoding="utf-8")
    from nmt.commands.options import build_parser, make_config

    by_flag = make_config(build_parser("x").parse_args(["--test-files", *given["test"]]))
    by_file = make_config(build_parser("x").parse_args(["--config", str(toml)]))
    assert by_flag.data.test_files == by_file.data.test_files == tuple(given["test"])


@pytest.mark.parametrize(
    "lines, fragment",
    [
        ((["one", "two", "three"], ["eins", "zwei"]), "t.en line 3 has no partner in"),
        ((["one", ""], ["eins", "zwei"]), "t.en line 2: empty line"),
    ],
)
def test_bad_given_files_are_one_line_errors_naming_file_and_line(parallel, tmp_path, lines, fragment):
    corpus, _ = parallel
    test = (write_lines(tmp_path / "t.en", lines[0]), write_lines(tmp_path / "t.de", lines[1]))
    with pytest.raises(CorpusError, match=fragment) as error:
        load_corpus(DataConfig(corpus=str(corpus), src="en", trg="de", test_files=test))
    assert "\n" not in str(error.value)


def test_a_missing_given_file_is_named(parallel, tmp_path, capsys):
    corpus, given = parallel
    argv = ["--corpus", str(corpus), "--src", "en", "--tgt", "de", "--test-files", given["test"][0], "nope.de"]
    assert train_command.main([*argv, "--run-dir", str(tmp_path / "run")]) == 1
    assert "nope.de: cannot read" in capsys.readouterr().err


def test_evaluate_on_given_files_scores_as_the_split_they_were_written_from(tmp_path, capsys):
    """The given-files path is the split's path: the test split written out as two files (every
    reference a line) and read back gives the same sentences, references and BLEU."""
    train(tiny_config(tmp_path, "demo", "en", "fr", tokenizer="word"))
    checkpoint = str(tmp_path / "last.pt")
    test = load_corpus(Translator.from_checkpoint(checkpoint).config.data).test
    files = (
        write_lines(tmp_path / "test.en", [s for s, _ in test]),
        write_lines(tmp_path / "test.fr", [t for _, t in test]),
    )

    def scores(*args) -> str:
        assert evaluate_command.main(["--checkpoint", checkpoint, "--examples", "0", *args]) == 0
        out = capsys.readouterr().out
        return out[out.index("\nBLEU") :]  # the scores and their signatures

    by_split = scores("--split", "test")
    assert scores("--test-files", *files) == by_split and "tok:13a" in by_split
    assert "tok:char" in scores("--test-files", *files, "--bleu-tokenize", "char")
