"""What makes search cheap must not change what it finds: sentences that are done leave the
batch, the host looks at them only every few steps on a GPU, and several models search as one.
Also sampling, which back-translation needs: reproducible, never PAD or SOS, scored by the model."""

import pytest
import torch
from test_search import TinyGRU, random_batch, rescore

from nmt.models.ensemble import Ensemble
from nmt.search import beam_search, greedy, sample
from nmt.specials import EOS, PAD, SOS


class CountingRows:
    """Wraps a model and records how many rows each step computes."""

    def __init__(self, model):
        self.model = model
        self.trg_vocab_size = model.trg_vocab_size
        self.rows: list[int] = []

    def encode(self, src, src_len):
        return self.model.encode(src, src_len)

    def init_state(self, encoded):
        return self.model.init_state(encoded)

    def step(self, prev, state, encoded, *, need_attention=False):
        self.rows.append(prev.size(0))
        return self.model.step(prev, state, encoded, need_attention=need_attention)

    def reorder(self, state, index):
        return self.model.reorder(state, index)


SEARCHES = {
    "greedy": lambda model, src, src_len, **kw: greedy(model, src, src_len, max_len=12, need_attention=True, **kw),
    "beam 4, 2-best": lambda model, src, src_len, **kw: beam_search(
        model, src, src_len, beam_size=4, n_best=2, length_penalty=1.0, max_len=12, need_attention=True, **kw
    ),
}


@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
def test_done_sentences_leave_the_batch_and_no_output_changes_when_the_host_looks_less_often(search):
    model = CountingRows(TinyGRU(seed=3, eos_bias=1.0))
    src, src_len = random_batch(4, batch=16)
    every_step = search(model, src, src_len, sync_every=1)
    first, rows = model.rows[0], model.rows[1:]
    assert first == 16  # one row a sentence: before its first token, a sentence's beams are all alike
    # then the batch shrinks as sentences end, so it ends smaller than it began
    assert rows[-1] < rows[0] and rows == sorted(rows, reverse=True)
    for sync_every in (3, 100):
        model.rows = []
        looser = search(model, src, src_len, sync_every=sync_every)
        assert looser.tokens == every_step.tokens and looser.cut == every_step.cut
        torch.testing.assert_close(torch.tensor(looser.scores), torch.tensor(every_step.scores))
        for a, b in zip(looser.attention, every_step.attention):
            for x, y in zip(a, b):
                torch.testing.assert_close(x, y)
    full = model.rows[1]  # looking only at the end, nothing leaves early
    assert model.rows == [first] + [full] * (len(model.rows) - 1) and full >= rows[0]


def test_an_ensemble_of_a_model_with_itself_searches_as_the_model_does():
    model = TinyGRU(seed=5, eos_bias=0.5)
    src, src_len = random_batch(2)
    twice = Ensemble([model, model])
    for search in SEARCHES.values():
        alone, together = search(model, src, src_len), search(twice, src, src_len)
        assert together.tokens == alone.tokens
        torch.testing.assert_close(torch.tensor(together.scores), torch.tensor(alone.scores))


def test_an_ensemble_averages_its_models_log_probabilities_at_each_step():
    a, b = TinyGRU(seed=1), TinyGRU(seed=2)
    src, src_len = random_batch(3, batch=4)
    ensemble = Ensemble([a, b])
    encoded = ensemble.encode(src, src_len)
    prev = torch.full((4,), SOS)
    mixed, _, attention = ensemble.step(prev, ensemble.init_state(encoded), encoded)
    expected, attentions = 0, []
    for model in (a, b):
        part = model.encode(src, src_len)
        logits, _, attn = model.step(prev, model.init_state(part), part)
        expected = expected + logits.log_softmax(-1) / 2
        attentions.append(attn)
    torch.testing.assert_close(mixed, expected)
    torch.testing.assert_close(attention, (attentions[0] + attentions[1]) / 2)


def test_the_same_generator_seed_gives_the_same_samples_and_another_seed_others():
    model = TinyGRU(seed=6)
    src, src_len = random_batch(5)

    def draw(seed):
        return sample(model, src, src_len, max_len=10, n=3, generator=torch.Generator().manual_seed(seed)).tokens

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)


def test_samples_are_never_pad_or_sos_and_come_best_first_scored_by_the_model():
    model = TinyGRU(seed=7, vocab=6)
    src, src_len = random_batch(6, batch=3)
    # a high temperature flattens the distribution, so every allowed token gets drawn
    hyps = sample(model, src, src_len, max_len=8, n=20, temperature=5.0, generator=torch.Generator().manual_seed(0))
    drawn = {tok for sentence in hyps.tokens for tokens in sentence for tok in tokens}
    assert PAD not in drawn and SOS not in drawn and len(drawn) == 6 - 3  # all but PAD, SOS and EOS
    for i, (outputs, scores, cut) in enumerate(zip(hyps.tokens, hyps.scores, hyps.cut)):
        assert len(outputs) == 20 and scores == sorted(scores, reverse=True)
        for tokens, score, was_cut in list(zip(outputs, scores, cut))[:3]:
            with_eos = tokens if was_cut else tokens + [EOS]
            log_prob, _ = rescore(model, src[i : i + 1], src_len[i : i + 1], with_eos)
            assert score == pytest.approx(log_prob, abs=1e-4)  # untempered: the model's own log-probability


def test_sampling_from_the_top_token_only_is_greedy_search():
    model = TinyGRU(seed=8)
    src, src_len = random_batch(7)
    for cut in ({"top_k": 1}, {"top_p": 1e-6}):
        sampled = sample(model, src, src_len, max_len=10, temperature=0.7, **cut)
        assert sampled.tokens == greedy(model, src, src_len, max_len=10).tokens


def test_sampling_options_that_draw_nothing_are_refused():
    model = TinyGRU(seed=9)
    src, src_len = random_batch(8)
    for bad in ({"n": 0}, {"temperature": 0.0}, {"top_k": -1}, {"top_p": 0.0}, {"top_p": 1.5}):
        with pytest.raises(ValueError):
            sample(model, src, src_len, max_len=5, **bad)
