"""Any text in, no crash out: the tokenizers and the translator under generated input."""

import dataclasses

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from nmt.config import Config, DataConfig, ModelConfig, TrainConfig
from nmt.readers import read_corpus
from nmt.spm import SpmTokenizer
from nmt.text import normalize
from nmt.training import train
from nmt.translator import Translator
from nmt.vocab import Lang

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
folded = st.text().map(lambda s: " ".join(s.split()))  # whitespace as the corpus reader leaves it


@pytest.fixture(scope="module")
def real_lines(real_corpus) -> list[str]:
    pairs = read_corpus(real_corpus)
    return [side for en, fr in pairs[:: len(pairs) // 1000] for side in (en, fr)]


@pytest.fixture(scope="module")
def lang(real_lines) -> Lang:
    return Lang.build(real_lines, name="en+fr")


@pytest.fixture(scope="module")
def spm(real_lines) -> SpmTokenizer:
    return SpmTokenizer.train(real_lines, vocab_size=400, name="en+fr")


@SETTINGS
@given(text=st.text())
def test_the_word_tokenizer_encodes_any_text_to_ids_of_its_vocabulary(lang, text):
    assert all(0 <= i < len(lang) for i in lang.encode(text))


@SETTINGS
@given(text=folded)
@example("L'homme est-il là ?")
@example("¿Qué? «Oui» -- 'quoted' \"twice\" (x) $5 5% ...")
@example("￭ ▁ ￭x ▁x")
def test_the_word_tokenizer_gives_back_any_text_whose_words_it_knows(text):
    lang = Lang.build([text], name="own words")
    assert lang.decode(lang.encode(text)) == text


@SETTINGS
@given(picks=st.lists(st.integers(min_value=0), min_size=1, max_size=5))
def test_the_word_tokenizer_gives_back_real_sentences_put_together(lang, real_lines, picks):
    text = " ".join(real_lines[i % len(real_lines)] for i in picks)
    assert lang.decode(lang.encode(text)) == text


@SETTINGS
@given(text=st.text())
def test_sentencepiece_encodes_any_text_to_ids_of_its_vocabulary(spm, text):
    assert all(0 <= i < len(spm) for i in spm.encode(text))


@SETTINGS
@given(data=st.data())
def test_sentencepiece_gives_back_normalised_text_of_characters_it_knows(spm, real_lines, data):
    alphabet = sorted(set("".join(real_lines)))
    text = normalize(data.draw(st.text(alphabet=alphabet)))
    assume(set(text) <= set(alphabet))  # NFC may compose two known characters into an unknown one
    assert spm.decode(spm.encode(text)) == text


# Translation ----------------------------------------------------------------------------------

TINY_MODELS = {
    "rnn+word": (DataConfig(tokenizer="word"), ModelConfig(emb_size=16, enc_hidden=16, dec_hidden=32)),
    "transformer+spm": (
        DataConfig(tokenizer="spm", vocab_size=300),
        ModelConfig(arch="transformer", d_model=16, heads=2, ff_size=32, enc_layers=1, dec_layers=1, max_positions=64),
    ),
}


@pytest.fixture(scope="module", params=TINY_MODELS.keys())
def translator(request, real_lines, tmp_path_factory) -> Translator:
    """A tiny model trained for 20 steps on 500 real pairs: enough to emit words, and EOS sometimes."""
    folder = tmp_path_factory.mktemp("translator")
    (folder / "pairs.txt").write_text(
        "".join(f"{en}\t{fr}\n" for en, fr in zip(real_lines[:1000:2], real_lines[1:1000:2])), encoding="utf-8"
    )
    data, model = TINY_MODELS[request.param]
    train(
        Config(
            data=dataclasses.replace(data, corpus=str(folder / "pairs.txt"), valid_size=10, test_size=0),
            model=model,
            train=TrainConfig(
                max_steps=20,
                batch_tokens=0,
                batch_size=32,
                scheduler="none",
                valid_bleu_sentences=10,
                run_dir=str(folder),
            ),
        )
    )
    return Translator.from_checkpoint(folder / "last.pt")


any_line = st.one_of(
    st.text(),
    # control, format, private-use and space characters; not lone surrogates, which are no
    # Unicode text (no UTF-8 file holds one) and which SentencePiece refuses with a RuntimeError
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Co", "Zs", "Zl", "Zp"])),
    st.lists(
        st.sampled_from(["I", "am", "Je", "suis", "Привет", "你好", "مرحبا", "שלום", "🙂", "é", "?", "\t", "\n"])
    ).map(" ".join),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(any_line, max_size=6), beam=st.sampled_from([1, 3]))
def test_translation_gives_one_output_per_input_line_whatever_the_lines(translator, lines, beam):
    translations = translator.translate_n_best(lines, beam_size=beam, n_best=beam, batch_size=4)
    assert [t.source for t in translations] == lines
    assert all(1 <= len(t.hypotheses) <= beam and all(isinstance(h, str) for h in t.hypotheses) for t in translations)


@pytest.mark.parametrize(
    "lines",
    [
        [""],
        ["", " ", "\t\n", "\x00\x07\x1b[31m", "\u200b\ufeff"],
        [" ".join(["the", "cat", "?"] * 700)],  # 2,100 words
        ["a" * 5000, "x"],  # one word of 5,000 characters
    ],
    ids=["empty", "blank and control", "2100 tokens", "5000-character word"],
)
def test_translation_survives_degenerate_lines(translator, lines):
    assert len(translator.translate(lines, batch_size=2)) == len(lines)
