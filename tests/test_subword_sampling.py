"""Subword sampling (--spm-alpha, Kudo 2018): a new segmentation of the training sentences each
epoch, the same one again for the same epoch (so a resumed run rebuilds it), and never at
validation or translation."""

import pytest
import torch
from tiny_checkpoints import TINY_RNN

from nmt.config import Config, ConfigError, DataConfig, TrainConfig
from nmt.corpora import load_corpus
from nmt.tokenizers import build_tokenizers
from nmt.training import build_data, train
from nmt.translator import Translator


def config(run_dir="unused", alpha=0.1, **train) -> Config:
    data = DataConfig(corpus="demo", vocab_size=300, valid_size=20, test_size=20, spm_alpha=alpha)
    options = {"batch_tokens": 0, "batch_size": 64, "run_dir": str(run_dir), **train}
    return Config(data=data, model=TINY_RNN, train=TrainConfig(**options))


@pytest.fixture(scope="module")
def prepared():
    cfg = config()
    splits = load_corpus(cfg.data)
    src_tok, trg_tok = build_tokenizers(splits.train, cfg.data)
    return cfg, splits, src_tok, trg_tok


def test_each_epoch_segments_the_training_sentences_anew(prepared):
    cfg, splits, src_tok, trg_tok = prepared
    data = build_data(splits, src_tok, trg_tok, cfg)
    first, second = data.train.epoch_examples(0), data.train.epoch_examples(1)
    assert first != second and first != data.train.examples
    changed = sum(a != b for a, b in zip(first, second))
    assert changed > len(first) // 2
    # a segmentation, not a corruption: every sampled source decodes to its sentence
    assert [src_tok.decode(s) for s, _ in first[:50]] == [src_tok.decode(s) for s, _ in data.train.examples[:50]]


def test_an_epoch_gets_the_same_segmentation_again_as_a_resumed_run_rebuilds_it(prepared):
    cfg, splits, src_tok, trg_tok = prepared
    one, other = build_data(splits, src_tok, trg_tok, cfg), build_data(splits, src_tok, trg_tok, cfg)
    one.train.epoch_examples(0)
    assert one.train.epoch_examples(3) == other.train.epoch_examples(3)
    assert one.train.epoch_batches(3) == other.train.epoch_batches(3)


def test_validation_and_translation_never_sample(prepared):
    cfg, splits, src_tok, trg_tok = prepared
    sampled = build_data(splits, src_tok, trg_tok, cfg)
    plain = build_data(splits, src_tok, trg_tok, config(alpha=0.0))
    for a, b in zip(sampled.valid_batches, plain.valid_batches):
        assert torch.equal(a.src, b.src) and torch.equal(a.trg_out, b.trg_out)
    assert sampled.train.examples == plain.train.examples  # the fixed segmentation is the plain one
    assert sampled.output_ids == list(range(len(trg_tok)))  # any piece may be sampled as a target


def test_a_run_with_subword_sampling_trains_and_translates_deterministically(tmp_path):
    # 100 updates: past the first epoch (4,960 pairs in batches of 64) into a resampled second
    train(config(tmp_path, max_steps=100, lr=1e-2, scheduler="none"))
    translator = Translator.from_checkpoint(tmp_path / "last.pt")
    assert translator.config.data.spm_alpha == 0.1
    lines = ["three hundred and forty-two", "nine"]
    assert translator.translate(lines) == translator.translate(lines)


def test_sampling_needs_sentencepiece():
    with pytest.raises(ConfigError, match="--spm-alpha 0.1 samples SentencePiece segmentations"):
        DataConfig(tokenizer="word", spm_alpha=0.1)


def test_a_run_stopped_and_resumed_trains_on_the_segmentations_of_the_run_that_did_not_stop(tmp_path):
    from training_runs import train_losses

    from nmt.commands.train import main

    flags = ["--corpus", "demo", "--vocab-size", "300", "--valid-size", "20", "--test-size", "20", "--spm-alpha"]
    flags += ["0.1", "--batch-tokens", "0", "--batch-size", "64", "--scheduler", "none", "--threads", "1"]
    flags += ["--emb-size", "16", "--enc-hidden", "16", "--dec-hidden", "32", "--log-every", "1"]
    assert main([*flags, "--max-steps", "100", "--run-dir", str(tmp_path / "whole")]) == 0
    assert main([*flags, "--max-steps", "50", "--run-dir", str(tmp_path / "part")]) == 0
    assert main([*flags, "--max-steps", "100", "--run-dir", str(tmp_path / "part"), "--resume"]) == 0
    assert train_losses(tmp_path / "part") == train_losses(tmp_path / "whole")
    assert len(train_losses(tmp_path / "whole")) == 100
