"""The word tokenizer is reversible, and Lang builds, encodes, decodes and serialises vocabularies."""

import json
import unicodedata
import zipfile

import pytest
import torch

from nmt.specials import EOS, PAD, SOS, UNK
from nmt.vocab import Lang, detokenize, tokenize


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


@pytest.fixture(scope="module")
def corpus_sample(real_corpus) -> dict[str, list[str]]:
    """Every 4th line of the real corpus (it is sorted by length, so all lengths are in)."""
    with zipfile.ZipFile(real_corpus) as archive:
        lines = archive.read("fra.txt").decode("utf-8").splitlines()[::4]
    pairs = [line.split("\t")[:2] for line in lines]
    return {"en": [normalise(en) for en, _ in pairs], "fr": [normalise(fr) for _, fr in pairs]}


SMALL = ["the cat sat.", "the dog sat.", "the cat ran."]


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("Go.", ["Go", "."]),
        ("Who?", ["Who", "?"]),
        ("Va !", ["Va", "▁!"]),  # French spacing before ! ? ; : is kept by a marker
        ("Qui ?", ["Qui", "▁?"]),
        ("L'homme est là.", ["L'", "homme", "est", "là", "."]),
        ("Qu'il vienne !", ["Qu'", "il", "vienne", "▁!"]),
        ("J’ai faim, c'est tout.", ["J’", "ai", "faim", ",", "c'", "est", "tout", "."]),
        ("Jusqu'à aujourd'hui.", ["Jusqu'", "à", "aujourd'hui", "."]),
        ("Réveille-toi !", ["Réveille", "-toi", "▁!"]),
        ("Y a-t-il quelqu'un ?", ["Y", "a", "-t", "-il", "quelqu'un", "▁?"]),
        ("I don't know.", ["I", "don't", "know", "."]),
        ("I'm sure it's Tom's.", ["I", "'m", "sure", "it", "'s", "Tom", "'s", "."]),
        ('He said, "Hi."', ["He", "said", ",", '"', "Hi", ".", '"']),
        ("« Oui. »", ["«", "Oui", ".", "»"]),
        ("It costs $10,000 (or 9.5%).", ["It", "costs", "$", "10,000", "(", "or", "9.5", "%", ")", "."]),
        ("At 4:30 a.m. ...", ["At", "4:30", "a", ".", "￭m", ".", "▁..."]),  # "m" glued where a word is not
    ],
)
def test_tokenize_splits_as_designed_and_detokenize_restores_the_text(text, tokens):
    assert tokenize(text) == tokens
    assert detokenize(tokens) == text


def test_text_containing_the_marker_characters_still_round_trips():
    text = "a ▁ b￭ ▁c ￭▁"
    assert detokenize(tokenize(text)) == text


def test_empty_text_has_no_tokens():
    assert tokenize("") == []
    assert detokenize([]) == ""


@pytest.mark.parametrize("side", ["en", "fr"])
def test_decode_encode_round_trips_real_corpus_lines(corpus_sample, side):
    lines = corpus_sample[side]
    lang = Lang.build(lines, name=side)  # built on the same lines: no unknown words
    exact = sum(lang.decode(lang.encode(line)) == line for line in lines)
    rate = exact / len(lines)
    print(f"{side}: {exact}/{len(lines)} lines round trip exactly ({rate:.4%})")
    assert rate >= 0.99


def test_build_keeps_words_seen_min_count_times_most_frequent_first():
    lang = Lang.build(SMALL, name="en", min_count=2)
    assert lang.index2word == ["<pad>", "<s>", "</s>", "<unk>", ".", "the", "cat", "sat"]  # ties alphabetical
    assert lang.word2count == {".": 3, "the": 3, "cat": 2, "sat": 2}
    assert lang.word2index == {word: i for i, word in enumerate(lang.index2word)}
    assert lang.n_words == len(lang) == 8


def test_max_size_caps_the_size_specials_included_and_ignores_sentence_order():
    lang = Lang.build(SMALL, name="en", max_size=7)
    assert lang.index2word == ["<pad>", "<s>", "</s>", "<unk>", ".", "the", "cat"]
    assert Lang.build(SMALL[::-1], name="en", max_size=7).index2word == lang.index2word


def test_max_size_without_room_for_words_is_an_error():
    with pytest.raises(ValueError, match="max_size"):
        Lang.build(SMALL, name="en", max_size=4)


def test_specials_have_the_interface_ids():
    lang = Lang.build(SMALL, name="en")
    assert [lang.word2index[word] for word in ("<pad>", "<s>", "</s>", "<unk>")] == [PAD, SOS, EOS, UNK]


def test_unknown_words_encode_to_unk_and_decode_as_unk_marker():
    lang = Lang.build(SMALL, name="en")
    ids = lang.encode("the bird sat on the bird.")
    assert ids == [
        lang.word2index["the"],
        UNK,
        lang.word2index["sat"],
        UNK,
        lang.word2index["the"],
        UNK,
        lang.word2index["."],
    ]
    assert lang.decode(ids) == "the <unk> sat <unk> the <unk>."
    assert lang.unknown_words("the bird sat on the bird.") == ["bird", "on"]


def test_decode_stops_at_the_first_eos_and_skips_pad_and_sos():
    lang = Lang.build(SMALL, name="en")
    the_cat, dog = lang.encode("the cat"), lang.encode("dog")
    assert lang.decode([SOS, *the_cat, EOS, *dog, PAD]) == "the cat"
    assert lang.decode(torch.tensor([SOS, the_cat[0], PAD, the_cat[1], PAD])) == "the cat"


def test_tokens_line_up_with_ids():
    lang = Lang.build(["Qui est là ?"], name="fr")
    text = "Qui est là ?"
    assert lang.tokens(text) == ["Qui", "est", "là", "▁?"]
    assert [lang.id_to_token(i) for i in lang.encode(text)] == lang.tokens(text)


def test_json_round_trip_gives_identical_attributes_and_encodings(corpus_sample):
    lines = corpus_sample["fr"][::10]
    lang = Lang.build(lines, name="fr", min_count=2)
    restored = Lang.from_dict(json.loads(json.dumps(lang.to_dict())))
    assert lang.to_dict()["kind"] == "word"
    assert vars(restored) == vars(lang)
    assert [restored.encode(line) for line in lines] == [lang.encode(line) for line in lines]


def test_from_dict_refuses_another_kind():
    with pytest.raises(ValueError, match="kind"):
        Lang.from_dict({"kind": "spm", "model": b""})
