"""Build the source and target tokenizers from the training pairs, and rebuild them from a
checkpoint's plain dicts."""

from __future__ import annotations

from nmt.config import DataConfig
from nmt.languages import character_coverage
from nmt.spm import SpmTokenizer
from nmt.vocab import Lang

Tokenizer = Lang | SpmTokenizer


def tokenizer_from_dict(d: dict) -> Tokenizer:
    """Inverse of ``to_dict`` for either kind of tokenizer."""
    kinds = {"word": Lang, "spm": SpmTokenizer}
    if d.get("kind") not in kinds:
        raise ValueError(f"unknown tokenizer kind {d.get('kind')!r}; expected one of {sorted(kinds)}")
    return kinds[d["kind"]].from_dict(d)


def build_tokenizers(train_pairs: list[tuple[str, str]], cfg: DataConfig) -> tuple[Tokenizer, Tokenizer]:
    """(source, target) tokenizers trained on the training pairs only, so validation and test
    words stay unseen. A joint vocabulary, and autoencoder mode, give one object twice."""
    sources = [src for src, _ in train_pairs]
    targets = [trg for _, trg in train_pairs]
    if cfg.autoencoder:
        shared = _train(sources, cfg, langs=[cfg.src])  # both sides are the same sentences
        return shared, shared
    if cfg.joint_vocab:
        shared = _train(sources + targets, cfg, langs=[cfg.src, cfg.trg])
        return shared, shared
    return _train(sources, cfg, langs=[cfg.src]), _train(targets, cfg, langs=[cfg.trg])


def _train(sentences: list[str], cfg: DataConfig, *, langs: list[str]) -> Tokenizer:
    name = "+".join(langs)
    if cfg.tokenizer == "word":
        return Lang.build(sentences, name=name, min_count=cfg.min_count, max_size=cfg.vocab_size)
    return SpmTokenizer.train(
        sentences,
        vocab_size=cfg.vocab_size,
        model_type=cfg.spm_model_type,
        character_coverage=cfg.character_coverage or character_coverage(langs),
        name=name,
    )
