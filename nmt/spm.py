"""SentencePiece subword tokenizer with the same surface as ``nmt.vocab.Lang``.

The model is trained in memory and kept as its serialized bytes, so a checkpoint carries the
whole tokenizer and translation needs no separate model file.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterable, Sequence

import sentencepiece

from nmt.specials import EOS, PAD, SOS, SPECIALS, UNK
from nmt.vocab import content_ids

# Unigram training time grows quickly with the corpus. On the 326k English and French lines of
# Tatoeba at 8k pieces, a random 100k of them train in a third of the time, and the pieces cut
# a sentence into about 1% more pieces than pieces trained on all of them.
MAX_TRAINING_SENTENCES = 100_000


class SpmTokenizer:
    """Subword pieces from a SentencePiece model; ids 0-3 are PAD, SOS, EOS and UNK as in Lang."""

    def __init__(self, model: bytes, *, name: str):
        self.name = name
        self.model = model
        self.processor = sentencepiece.SentencePieceProcessor(model_proto=model)

    @classmethod
    def train(
        cls,
        sentences: Sequence[str],
        *,
        vocab_size: int,
        model_type: str = "unigram",
        character_coverage: float = 1.0,
        name: str,
    ) -> SpmTokenizer:
        """Train on ``sentences`` (already NFC and whitespace-folded). ``vocab_size`` is an upper
        bound: data with fewer distinct pieces gives a smaller vocabulary. At ``character_coverage``
        1.0 every character of ``sentences`` gets a piece; below it, the rarest are left to <unk>."""
        if model_type not in ("unigram", "bpe"):
            raise ValueError(f"unknown SentencePiece model_type {model_type!r}; use 'unigram' or 'bpe'")
        every_character = character_coverage == 1.0
        alphabet = set("".join(sentences)) - {" "} if every_character else set()
        if vocab_size < len(alphabet) + 1 + len(SPECIALS):  # + 1: the ▁ that stands for a space
            raise ValueError(
                f"vocab_size={vocab_size} is too small: the data has {len(alphabet) + 1} distinct characters, "
                f"and every one of them plus the {len(SPECIALS)} specials needs a piece"
            )
        model = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(_sample(sentences, MAX_TRAINING_SENTENCES)),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            hard_vocab_limit=False,
            character_coverage=character_coverage,
            required_chars="".join(sorted(alphabet)),  # at 1.0, even those only in lines left out of the sample
            normalization_rule_name="identity",  # nmt_nfkc would rewrite characters and break round trips
            pad_id=PAD,
            bos_id=SOS,
            eos_id=EOS,
            unk_id=UNK,
            pad_piece=SPECIALS[PAD],
            bos_piece=SPECIALS[SOS],
            eos_piece=SPECIALS[EOS],
            unk_piece=SPECIALS[UNK],
            unk_surface=SPECIALS[UNK],  # decode shows <unk>, as Lang does
            minloglevel=2,  # errors only: the training log would flood stderr
        )
        return cls(model.getvalue(), name=name)

    @property
    def n_words(self) -> int:
        return self.processor.get_piece_size()

    def __len__(self) -> int:
        return self.n_words

    def tokens(self, text: str) -> list[str]:
        """The pieces of ``text``, one per id of ``encode(text)``."""
        return self.processor.encode(text, out_type=str)

    def encode(self, text: str) -> list[int]:
        """Piece ids, without SOS or EOS; characters never seen in training become UNK."""
        return self.processor.encode(text)

    def encode_sampled(self, text: str, *, alpha: float, nbest: int) -> list[int]:
        """Piece ids of one segmentation of ``text`` drawn at random (subword regularization,
        Kudo 2018), from the generator ``seed_sampling`` seeds; training only."""
        return self.processor.encode(text, enable_sampling=True, alpha=alpha, nbest_size=nbest)

    def decode(self, ids: Iterable[int]) -> str:
        """Text up to the first EOS; PAD and SOS are skipped, UNK shows as <unk>."""
        return self.processor.decode(content_ids(ids))

    def id_to_token(self, i: int) -> str:
        return self.processor.id_to_piece(i)

    def unknown_words(self, text: str) -> list[str]:
        """The pieces of ``text`` that map to UNK, each once, in order of appearance."""
        pieces = zip(self.processor.encode(text, out_type=str), self.processor.encode(text))
        return list(dict.fromkeys(piece for piece, i in pieces if i == UNK))

    def to_dict(self) -> dict:
        return {"kind": "spm", "name": self.name, "model": self.model}

    @classmethod
    def from_dict(cls, d: dict) -> SpmTokenizer:
        if d.get("kind") != "spm":
            raise ValueError(f"not a SentencePiece tokenizer: kind={d.get('kind')!r}")
        return cls(d["model"], name=d["name"])


def seed_sampling(seed: int) -> None:
    """Seed SentencePiece's own generator, which ``encode_sampled`` draws from: the same seed,
    the same segmentations, so an epoch's batches can be rebuilt on resume."""
    sentencepiece.set_random_generator_seed(seed)


def _sample(sentences: Sequence[str], limit: int) -> Sequence[str]:
    """At most ``limit`` sentences, drawn at random with a fixed seed. Not every k-th line:
    the list may be ordered (by length, or English and French lines alternating)."""
    if len(sentences) <= limit:
        return sentences
    return random.Random(0).sample(sentences, limit)
