"""Batches: prepared once, bucketed by length within a token budget, reproducible from the seed."""

import random

import pytest
import torch

from nmt.data import BatchedData, bucket, make_batch, padded_size, padding_waste
from nmt.readers import read_corpus
from nmt.specials import EOS, PAD, SOS
from nmt.vocab import Lang


def random_examples(n=500, seed=0):
    rng = random.Random(seed)
    return [
        (
            [rng.randrange(4, 50) for _ in range(rng.randint(1, 30))],
            [rng.randrange(4, 50) for _ in range(rng.randint(1, 30))],
        )
        for _ in range(n)
    ]


def test_a_batch_shifts_the_target_once_sos_in_and_eos_out():
    b = make_batch([([5, 6, 7], [8, 9]), ([10], [11, 12, 13])])
    assert b.src.tolist() == [[5, 6, 7], [10, PAD, PAD]]
    assert b.src_len.tolist() == [3, 1]
    assert b.trg_in.tolist() == [[SOS, 8, 9, PAD], [SOS, 11, 12, 13]]
    assert b.trg_out.tolist() == [[8, 9, EOS, PAD], [11, 12, 13, EOS]]
    assert b.n_tokens == 7 == int(b.trg_mask.sum())
    assert b.src_mask.tolist() == [[True, True, True], [True, False, False]]


def test_token_budget_bounds_every_batch_and_every_example_is_used_once():
    examples = random_examples()
    batches = bucket(examples, batch_tokens=300, seed=1)
    assert sorted(i for b in batches for i in b) == list(range(len(examples)))
    assert all(padded_size([examples[i] for i in b]) <= 300 for b in batches)


def test_sentence_count_batches_hold_batch_size_sentences():
    batches = bucket(random_examples(), batch_tokens=0, batch_size=32, seed=1)
    assert sorted(len(b) for b in batches)[1:] == [32] * (len(batches) - 1)


def test_batches_are_reproducible_from_the_seed_and_differ_between_epochs():
    data = BatchedData(random_examples(), batch_tokens=300, batch_size=0, seed=7)
    assert data.epoch_batches(0) == data.epoch_batches(0)
    assert data.epoch_batches(0) != data.epoch_batches(1)


def test_a_resumed_epoch_continues_with_the_same_batches():
    data = BatchedData(random_examples(), batch_tokens=300, batch_size=0, seed=7)
    full = list(data.batches(3))
    resumed = list(data.batches(3, start=5))
    assert len(resumed) == len(full) - 5
    pairs = [(a.pieces[0], b.pieces[0]) for a, b in zip(full[5:], resumed)]
    assert all(torch.equal(a.src, b.src) and torch.equal(a.trg_out, b.trg_out) for a, b in pairs)


def test_empty_training_data_is_a_clear_error():
    with pytest.raises(ValueError, match="no training examples"):
        BatchedData([], batch_tokens=100, batch_size=0, seed=0)


def test_bucketing_keeps_padding_under_ten_percent_on_the_real_corpus(real_corpus):
    pairs = read_corpus(real_corpus)[:60000]
    lang = Lang.build([s for p in pairs for s in p], name="joint")
    examples = [(lang.encode(en), lang.encode(fr)) for en, fr in pairs]
    bucketed = padding_waste(bucket(examples, batch_tokens=4000, seed=0), examples)
    shuffled = list(range(len(examples)))
    random.Random(0).shuffle(shuffled)
    unbucketed = padding_waste([shuffled[i : i + 64] for i in range(0, len(shuffled), 64)], examples)
    print(f"padding waste: bucketed {bucketed:.1%}, random batches {unbucketed:.1%}")
    assert bucketed < 0.10 < unbucketed
