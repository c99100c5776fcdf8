"""A sentence's translation does not depend on its batch: the real RNN and Transformer give the
same tokens and scores (within 1e-5) at batch 1, batch 64 and batch 7 with the lines shuffled."""

import random

import pytest
from tiny_checkpoints import save_untrained

from nmt.config import ModelConfig
from nmt.corpora import demo_pairs
from nmt.translator import Translator

MODELS = {
    "rnn": ModelConfig(emb_size=32, enc_hidden=32, dec_hidden=48, dropout=0.3),
    "transformer": ModelConfig(
        arch="transformer", d_model=32, heads=2, ff_size=64, enc_layers=2, dec_layers=2, dropout=0.3
    ),
}
SEARCHES = {
    "greedy": {"beam_size": 1},
    "beam 5, 3-best, penalty": {"beam_size": 5, "n_best": 3, "length_penalty": 0.8},
}


@pytest.fixture(scope="module", params=MODELS, ids=list(MODELS))
def translator(request, tmp_path_factory):
    path = save_untrained(tmp_path_factory.mktemp(request.param) / "model.pt", MODELS[request.param])
    return Translator.from_checkpoint(path)


@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
def test_a_translation_does_not_depend_on_the_batch_it_is_in(translator, search):
    lines = [en for en, _ in demo_pairs(n=40, seed=7)]
    shuffled = random.Random(0).sample(range(len(lines)), len(lines))
    alone = translator.translate_n_best(lines, batch_size=1, max_len=12, **search)
    together = translator.translate_n_best(lines, batch_size=64, max_len=12, **search)
    sevens = translator.translate_n_best([lines[i] for i in shuffled], batch_size=7, max_len=12, **search)
    in_order = [None] * len(lines)
    for position, i in enumerate(shuffled):
        in_order[i] = sevens[position]
    for a, b, c in zip(alone, together, in_order):
        assert a.tokens == b.tokens == c.tokens
        assert b.scores == pytest.approx(a.scores, abs=1e-5) and c.scores == pytest.approx(a.scores, abs=1e-5)
