"""SentencePiece tokenizer trained on real lines, and build_tokenizers' joint and separate vocabularies."""

import io
import unicodedata
import zipfile

import pytest
import torch

import nmt.spm
from nmt.config import DataConfig
from nmt.specials import EOS, PAD, SOS, UNK
from nmt.spm import SpmTokenizer
from nmt.tokenizers import build_tokenizers, tokenizer_from_dict
from nmt.vocab import Lang


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


@pytest.fixture(scope="module")
def pairs(real_corpus) -> dict[str, list[tuple[str, str]]]:
    """20k training pairs and 2k held-out pairs, each spread over the whole (length-sorted) corpus."""
    with zipfile.ZipFile(real_corpus) as archive:
        lines = archive.read("fra.txt").decode("utf-8").splitlines()
    all_pairs = [tuple(normalise(side) for side in line.split("\t")[:2]) for line in lines]
    return {"train": all_pairs[::8][:20_000], "held_out": all_pairs[4::8][:2_000]}


@pytest.fixture(scope="module")
def train_lines(pairs) -> list[str]:
    return [side for pair in pairs["train"] for side in pair]


@pytest.fixture(scope="module")
def held_out_lines(pairs) -> list[str]:
    return [side for pair in pairs["held_out"] for side in pair]


@pytest.fixture(scope="module")
def unigram(train_lines) -> SpmTokenizer:
    return SpmTokenizer.train(train_lines, vocab_size=1000, model_type="unigram", name="en+fr")


def test_specials_have_the_interface_ids(unigram):
    assert [unigram.id_to_token(i) for i in (PAD, SOS, EOS, UNK)] == ["<pad>", "<s>", "</s>", "<unk>"]
    assert len(unigram) == unigram.n_words == 1000


def test_encode_adds_no_sos_or_eos_and_tokens_line_up_with_ids(unigram):
    ids = unigram.encode("Qui est là ?")
    assert SOS not in ids and EOS not in ids
    assert unigram.tokens("Qui est là ?") == [unigram.id_to_token(i) for i in ids]


@pytest.mark.parametrize("letter", ["é", "ç", "À"])
def test_decode_encode_keeps_accents_and_case_of_held_out_lines(unigram, held_out_lines, letter):
    lines = [line for line in held_out_lines if letter in line]
    assert lines, f"no held-out line with {letter}"
    assert [unigram.decode(unigram.encode(line)) for line in lines] == lines


def test_decode_encode_round_trips_held_out_lines_without_unseen_characters(unigram, held_out_lines):
    known = [line for line in held_out_lines if not unigram.unknown_words(line)]
    assert len(known) >= 0.99 * len(held_out_lines)
    assert [unigram.decode(unigram.encode(line)) for line in known] == known


def test_unseen_characters_become_unk_and_are_reported(unigram):
    ids = unigram.encode("Bonjour Привет")
    assert UNK in ids
    assert unigram.decode(ids) == "Bonjour <unk>"
    assert unigram.unknown_words("Привет, Привет") == ["Привет"]


def test_decode_stops_at_the_first_eos_and_skips_pad_and_sos(unigram):
    hello, world = unigram.encode("Bonjour."), unigram.encode("Le monde.")
    assert unigram.decode([SOS, *hello, EOS, *world, PAD]) == "Bonjour."
    assert unigram.decode(torch.tensor([SOS, *hello, PAD, PAD])) == "Bonjour."


def test_to_dict_survives_torch_save_and_weights_only_load(unigram, held_out_lines):
    buffer = io.BytesIO()
    torch.save(unigram.to_dict(), buffer)
    buffer.seek(0)
    d = torch.load(buffer, weights_only=True)
    assert d["kind"] == "spm" and isinstance(d["model"], bytes)
    restored = tokenizer_from_dict(d)
    assert restored.n_words == unigram.n_words and restored.name == "en+fr"
    assert [restored.encode(line) for line in held_out_lines] == [unigram.encode(line) for line in held_out_lines]


def test_bpe_trains_and_round_trips_too(unigram, train_lines, held_out_lines):
    bpe = SpmTokenizer.train(train_lines, vocab_size=1000, model_type="bpe", name="en+fr")
    known = [line for line in held_out_lines if not bpe.unknown_words(line)]
    assert len(bpe) == 1000
    assert [bpe.decode(bpe.encode(line)) for line in known] == known
    assert [bpe.encode(line) for line in known] != [unigram.encode(line) for line in known]


def test_vocab_size_is_an_upper_bound_when_the_data_is_small(train_lines):
    small = SpmTokenizer.train(train_lines[:50], vocab_size=8000, model_type="unigram", name="tiny")
    assert len(small) < 8000
    assert all(small.decode(small.encode(line)) == line for line in train_lines[:50])


def test_characters_only_in_lines_left_out_of_the_training_sample_still_get_pieces(train_lines, monkeypatch):
    monkeypatch.setattr(nmt.spm, "MAX_TRAINING_SENTENCES", 200)
    rare = "Ça coûte 5 € ‽"
    tokenizer = SpmTokenizer.train(train_lines[:2000] + [rare], vocab_size=300, name="en+fr")
    assert tokenizer.unknown_words(rare) == []
    assert tokenizer.decode(tokenizer.encode(rare)) == rare


def test_vocab_size_below_the_alphabet_is_a_clear_error(train_lines):
    with pytest.raises(ValueError, match="vocab_size=20 is too small"):
        SpmTokenizer.train(train_lines, vocab_size=20, name="en+fr")


def test_joint_vocab_is_one_tokenizer_for_both_sides(pairs):
    cfg = DataConfig(tokenizer="spm", vocab_size=500, joint_vocab=True)
    src, trg = build_tokenizers(pairs["train"][:5000], cfg)
    assert src is trg
    assert isinstance(src, SpmTokenizer) and src.name == "en+fr"


def test_separate_vocabs_are_trained_on_their_own_side(pairs):
    cfg = DataConfig(tokenizer="spm", vocab_size=500, joint_vocab=False)
    src, trg = build_tokenizers(pairs["train"][:5000], cfg)
    french = "Je ne sais pas ce qu'il veut."
    assert (src.name, trg.name) == ("en", "fr")
    assert len(trg.tokens(french)) < len(src.tokens(french))
    assert {src.id_to_token(i) for i in range(len(src))} != {trg.id_to_token(i) for i in range(len(trg))}


def test_word_tokenizers_follow_min_count_and_vocab_size(pairs):
    cfg = DataConfig(tokenizer="word", vocab_size=300, min_count=2, joint_vocab=False)
    src, trg = build_tokenizers(pairs["train"], cfg)
    assert isinstance(src, Lang) and isinstance(trg, Lang)
    assert len(src) == len(trg) == 300
    assert "homme" in trg.word2index and "homme" not in src.word2index
    uncapped = build_tokenizers(
        pairs["train"], DataConfig(tokenizer="word", vocab_size=0, min_count=2, joint_vocab=False)
    )[0]
    assert len(uncapped) > 300 and min(uncapped.word2count.values()) == 2


def test_autoencoder_mode_shares_one_tokenizer_even_without_joint_vocab(pairs):
    french = [(fr, fr) for _, fr in pairs["train"][:2000]]
    src, trg = build_tokenizers(french, DataConfig(src="fr", trg="fr", tokenizer="word", joint_vocab=False))
    assert src is trg and src.name == "fr"


def test_tokenizer_from_dict_rebuilds_either_kind_and_refuses_others(unigram):
    lang = Lang.build(["Qui est là ?"], name="fr")
    assert tokenizer_from_dict(lang.to_dict()).index2word == lang.index2word
    assert tokenizer_from_dict(unigram.to_dict()).encode("Qui est là ?") == unigram.encode("Qui est là ?")
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        tokenizer_from_dict({"kind": "bytes"})
