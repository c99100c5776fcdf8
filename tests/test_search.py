"""Greedy and beam search, tested by invariants on two small stand-in models: one whose
next-token probabilities are written by hand, one randomly initialised."""

import math
import re

import pytest
import torch
from torch import Tensor, nn

import nmt.search
from nmt.models.interface import Encoded
from nmt.search import (
    DEFAULT_BEAM,
    DEFAULT_LENGTH_PENALTY,
    SearchOptions,
    beam_search,
    greedy,
    max_output_length,
    search,
    top_continuations,
    top_continuations_by_blocks,
)
from nmt.specials import EOS, PAD, SOS

A, B, C, D = 3, 4, 5, 6


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """(batch,) lengths -> (batch, max_len) bool mask, True at real positions."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len)[None, :] < lengths[:, None]


class TableModel:
    """Next-token probabilities looked up by (table, prefix): a sentence uses the table named by
    its first source token; the prefix is the tokens generated so far, without SOS. A prefix
    missing from its table ends with certainty (EOS). Counts its steps, to test early stopping."""

    trg_vocab_size = 8

    def __init__(self, tables: dict[int, dict[tuple, dict[int, float]]]):
        self.tables = tables
        self.steps = 0

    def encode(self, src, src_len):
        return Encoded(outputs=src[:, :, None].float(), mask=lengths_to_mask(src_len, src.size(1)))

    def init_state(self, encoded):
        return [(int(first), ()) for first in encoded.outputs[:, 0, 0].tolist()]

    def step(self, prev, state, encoded, *, need_attention=False):
        self.steps += 1
        # the state holds the prefix before ``prev``, and SOS is no part of a prefix
        state = [(tab, prefix if tok == SOS else prefix + (tok,)) for (tab, prefix), tok in zip(state, prev.tolist())]
        logits = torch.full((len(state), self.trg_vocab_size), float("-inf"))  # (rows, vocab)
        for row, (table, prefix) in enumerate(state):
            for tok, p in self.tables[table].get(prefix, {EOS: 1.0}).items():
                logits[row, tok] = math.log(p)
        return logits, state, None

    def reorder(self, state, index):
        return [state[i] for i in index.tolist()]


class TinyGRU(nn.Module):
    """Random encoder-decoder: the source embeddings mean-pooled into the first state, a GRU
    cell, and dot-product attention over the source. Untrained; it makes distributions no one
    chose by hand. Padding never reaches a sentence's result: it is masked in the pooling and in
    the attention."""

    def __init__(self, *, seed: int, attention: bool = True, eos_bias: float = 0.0, vocab: int = 11, hidden: int = 16):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.src_emb = nn.Embedding(13, hidden, padding_idx=PAD)
            self.trg_emb = nn.Embedding(vocab, hidden, padding_idx=PAD)
            self.cell = nn.GRUCell(hidden, hidden)
            self.out = nn.Linear(2 * hidden, vocab)
        self.trg_vocab_size = vocab
        self.attention = attention
        self.eos_bias = eos_bias
        self.eval()

    def encode(self, src, src_len):
        return Encoded(outputs=self.src_emb(src), mask=lengths_to_mask(src_len, src.size(1)))  # (batch, S, hidden)

    def init_state(self, encoded):
        real = encoded.mask[:, :, None].float()  # (batch, S, 1)
        return torch.tanh((encoded.outputs * real).sum(1) / real.sum(1))  # (batch, hidden)

    def step(self, prev, state, encoded, *, need_attention=False):
        h = self.cell(self.trg_emb(prev), state)  # (rows, hidden)
        sources, S, hidden = encoded.outputs.shape
        queries = h.view(sources, -1, hidden)  # (sources, rows // sources, hidden): the rows reading each source
        scores = (queries @ encoded.outputs.transpose(1, 2)).masked_fill(~encoded.mask[:, None], float("-inf"))
        weights = scores.softmax(-1)  # (sources, rows // sources, S)
        context = (weights @ encoded.outputs).view(-1, hidden)  # (rows, hidden)
        weights = weights.view(-1, S)  # (rows, S)
        # sharpened, so that greedy and beam search disagree often enough to be worth testing
        logits = 3 * self.out(torch.cat([h, context], -1))  # (rows, vocab)
        logits[:, EOS] += self.eos_bias
        return logits, h, weights if self.attention else None

    def reorder(self, state, index):
        return state.index_select(0, index)


def random_batch(seed: int, batch: int = 8):
    gen = torch.Generator().manual_seed(seed)
    src_len = torch.randint(1, 10, (batch,), generator=gen)  # (batch,)
    src = torch.randint(3, 13, (batch, int(src_len.max())), generator=gen)  # (batch, S)
    return src.masked_fill(~lengths_to_mask(src_len), PAD), src_len


def table_src(*tables: int):
    """One source sentence per table: its first token names the table; lengths differ."""
    src_len = torch.tensor([1 + i for i in range(len(tables))])
    src = torch.tensor([[t] * int(src_len.max()) for t in tables])
    return src.masked_fill(~lengths_to_mask(src_len), PAD), src_len


def gnmt(length: int, alpha: float) -> float:
    return ((5 + length) / 6) ** alpha


# Greedy takes A (0.6) and ends with 0.6 * 0.35; B (0.4) leads to C (0.9), 0.36 in all.
GARDEN_PATH = {(): {A: 0.6, B: 0.4}, (A,): {C: 0.35, D: 0.33, EOS: 0.32}, (B,): {C: 0.9, D: 0.1}}
# B then EOS has 0.55; A A A A then EOS has 0.45 * 0.99 ** 3, less, but it is longer.
SHORT_OR_LONG = {
    (): {B: 0.55, A: 0.45},
    (A,): {A: 0.99, EOS: 0.01},
    (A, A): {A: 0.99, EOS: 0.01},
    (A, A, A): {A: 0.99, EOS: 0.01},
}


def test_hand_built_garden_path_greedy_is_wrong_beam_is_right():
    model = TableModel({A: GARDEN_PATH})
    src, src_len = table_src(A)
    g = greedy(model, src, src_len, max_len=10)
    assert g.tokens == [[[A, C]]]
    assert g.log_probs[0][0] == pytest.approx(math.log(0.6 * 0.35), abs=1e-5)
    b = beam_search(model, src, src_len, beam_size=2, max_len=10)
    assert b.tokens == [[[B, C]]]
    assert b.log_probs[0][0] == pytest.approx(math.log(0.4 * 0.9), abs=1e-5)
    assert b.scores == b.log_probs
    assert b.attention is None and g.attention is None


def test_early_stop_once_no_live_hypothesis_can_win():
    model = TableModel({A: GARDEN_PATH})
    src, src_len = table_src(A)
    beam_search(model, src, src_len, beam_size=2, max_len=50)
    # B C EOS finishes at step 3 with 0.36, above every live hypothesis
    assert model.steps == 3


def test_hand_built_tables_batched_with_different_paths():
    model = TableModel({A: GARDEN_PATH, B: SHORT_OR_LONG})
    src, src_len = table_src(A, B)
    b = beam_search(model, src, src_len, beam_size=2, n_best=2, max_len=10)
    assert b.tokens == [[[B, C], [A, C]], [[B], [A, A, A, A]]]


def test_length_penalty_favours_longer_hypotheses():
    model = TableModel({A: SHORT_OR_LONG})
    src, src_len = table_src(A)
    long_lp, short_lp = math.log(0.45 * 0.99**3), math.log(0.55)
    assert short_lp > long_lp and short_lp / gnmt(2, 2.0) < long_lp / gnmt(5, 2.0)
    plain = beam_search(model, src, src_len, beam_size=2, max_len=10)
    assert plain.tokens == [[[B]]]
    penalised = beam_search(model, src, src_len, beam_size=2, length_penalty=2.0, n_best=2, max_len=10)
    assert penalised.tokens == [[[A, A, A, A], [B]]]
    assert penalised.scores[0] == pytest.approx([long_lp / gnmt(5, 2.0), short_lp / gnmt(2, 2.0)], abs=1e-5)
    assert penalised.log_probs[0] == pytest.approx([long_lp, short_lp], abs=1e-5)
    # [B] finishes first; the search must not stop there, as A A A A, still live, will beat it
    assert beam_search(model, src, src_len, beam_size=2, length_penalty=2.0, max_len=10).tokens == [[[A, A, A, A]]]


def test_pad_and_sos_are_never_output():
    model = TableModel({A: {(): {PAD: 0.5, SOS: 0.3, C: 0.2}, (C,): {PAD: 0.6, SOS: 0.3, EOS: 0.1}}})
    src, src_len = table_src(A)
    assert greedy(model, src, src_len, max_len=5).tokens == [[[C]]]
    assert beam_search(model, src, src_len, beam_size=3, n_best=2, max_len=5).tokens[0][0] == [C]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_size_one_is_greedy(seed):
    model = TinyGRU(seed=seed, eos_bias=1.0)
    src, src_len = random_batch(seed)
    limits = max_output_length(src_len, a=1.0, b=2)
    g = greedy(model, src, src_len, max_len=limits)
    b = beam_search(model, src, src_len, beam_size=1, max_len=limits)
    assert b.tokens == g.tokens
    for gs, bs in zip(g.scores, b.scores):
        assert bs == pytest.approx(gs, abs=1e-5)


def test_batched_equals_one_sentence_at_a_time():
    model = TinyGRU(seed=4, eos_bias=1.0)
    src, src_len = random_batch(4)
    limits = max_output_length(src_len, a=1.0, b=3)
    searches = [
        lambda s, n, lim: greedy(model, s, n, max_len=lim, need_attention=True),
        lambda s, n, lim: beam_search(
            model, s, n, beam_size=3, n_best=2, length_penalty=1.0, max_len=lim, need_attention=True
        ),
    ]
    for run_search in searches:
        batched = run_search(src, src_len, limits)
        for i in range(len(src)):
            alone = run_search(src[i : i + 1, : src_len[i]], src_len[i : i + 1], limits[i : i + 1])
            assert batched.tokens[i] == alone.tokens[0]
            assert batched.scores[i] == pytest.approx(alone.scores[0], abs=1e-5)
            for a, b in zip(batched.attention[i], alone.attention[0]):
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("vocab, block", [(512, 64), (549, 64), (200, 8), (67, 8)])
@pytest.mark.parametrize("beam", [1, 2, 5])
def test_continuations_by_blocks_are_those_of_a_top_k_over_every_output(vocab, block, beam):
    gen = torch.Generator().manual_seed(vocab + beam)
    sentences = 7
    log_probs = (3 * torch.randn(sentences * beam, vocab, generator=gen)).log_softmax(-1)
    log_probs[:, [PAD, SOS]] = float("-inf")
    alive = -5 * torch.rand(sentences, beam, generator=gen)
    alive[:2, 1:] = float("-inf")  # a first step: only beam 0 is live
    plain = top_continuations(log_probs, alive, 2 * beam)
    blocked = top_continuations_by_blocks(log_probs, alive, 2 * beam, block=block)
    for a, b in zip(plain, blocked):
        assert torch.equal(a, b)


def test_beam_search_over_a_large_vocabulary_finds_what_the_plain_top_k_finds(monkeypatch):
    model = TinyGRU(seed=5, vocab=700, eos_bias=2.0)
    src, src_len = random_batch(5, batch=40)  # 200 rows of 700 outputs a step: the blocks' size
    limits = max_output_length(src_len, a=1.0, b=3)
    blocked = beam_search(model, src, src_len, beam_size=5, n_best=3, length_penalty=1.0, max_len=limits)
    monkeypatch.setattr(nmt.search, "BLOCKS_FROM", math.inf)
    plain = beam_search(model, src, src_len, beam_size=5, n_best=3, length_penalty=1.0, max_len=limits)
    assert blocked.tokens == plain.tokens
    assert blocked.scores == plain.scores


def exhaustive_best(model, src, src_len, *, max_len, alpha):
    """The best score over every possible output, by expanding every prefix: the reference
    that a beam wide enough to keep every hypothesis must match."""
    encoded = model.encode(src, src_len)
    state = model.init_state(encoded)
    prefixes = [(i, 0.0) for i in range(len(src))]  # per row: (sentence, log-prob) of a live prefix
    best = [float("-inf")] * len(src)
    tokens = []  # the last token of each live prefix
    for t in range(max_len):
        prev = torch.full((len(prefixes),), SOS) if t == 0 else torch.tensor(tokens)
        rows = torch.tensor([i for i, _ in prefixes])
        logits, state, _ = model.step(prev, state, encoded.index_select(rows))
        log_probs = logits.log_softmax(-1).tolist()  # (rows, vocab)
        parents, tokens, grown = [], [], []
        for row, (i, lp) in enumerate(prefixes):
            for tok in range(EOS, model.trg_vocab_size):
                score = lp + log_probs[row][tok]
                if tok == EOS or t + 1 == max_len:
                    best[i] = max(best[i], score / gnmt(t + 1, alpha))
                else:
                    parents.append(row)
                    tokens.append(tok)
                    grown.append((i, score))
        state = model.reorder(state, torch.tensor(parents, dtype=torch.long))
        prefixes = grown
    return best


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_a_beam_holding_every_hypothesis_finds_the_exhaustive_best(alpha):
    # 3 tokens and EOS, 4 steps: at most 36 candidates a step before the last, so a beam of 36
    # loses nothing the best could come from, and its early stop must not cut a winner off
    model = TinyGRU(seed=8, vocab=6, eos_bias=-1.0)
    src, src_len = random_batch(8, batch=4)
    hyps = beam_search(model, src, src_len, beam_size=36, length_penalty=alpha, max_len=4)
    expected = exhaustive_best(model, src, src_len, max_len=4, alpha=alpha)
    assert [s[0] for s in hyps.scores] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_n_best_lists_are_sorted_and_distinct(alpha):
    model = TinyGRU(seed=5, eos_bias=0.5)
    src, src_len = random_batch(5)
    hyps = beam_search(model, src, src_len, beam_size=5, n_best=3, length_penalty=alpha, max_len=10)
    for tokens, scores, log_probs in zip(hyps.tokens, hyps.scores, hyps.log_probs):
        assert len(tokens) == 3 and len({tuple(t) for t in tokens}) == 3
        assert scores == sorted(scores, reverse=True)
        for toks, score, lp in zip(tokens, scores, log_probs):
            # a hypothesis shorter than the limit ended with an EOS, which counts in its length
            length = len(toks) + (len(toks) < 10)
            assert score == pytest.approx(lp / gnmt(length, alpha), abs=1e-5)


def rescore(model, src, src_len, tokens):
    """Log-probability and attention of one sentence's given output, fed to the model token by token."""
    encoded = model.encode(src, src_len)
    state = model.init_state(encoded)
    log_prob, attention = 0.0, []
    for prev, tok in zip([SOS] + tokens, tokens):
        logits, state, attn = model.step(torch.tensor([prev]), state, encoded)
        log_prob += logits.log_softmax(-1)[0, tok].item()
        attention.append(attn[0])
    return log_prob, torch.stack(attention)  # (len(tokens), src_len)


def test_beam_returns_the_log_prob_and_attention_of_its_tokens():
    # a seed where EOS often sits among the beams mid-search, which moves the live ones around
    model = TinyGRU(seed=10, eos_bias=0.5)
    src, src_len = random_batch(10, batch=4)
    hyps = beam_search(model, src, src_len, beam_size=4, n_best=4, length_penalty=1.0, max_len=7, need_attention=True)
    for i in range(len(src)):
        for tokens, log_prob, attention in zip(hyps.tokens[i], hyps.log_probs[i], hyps.attention[i]):
            generated = tokens + [EOS] * (len(tokens) < 7)
            alone = src[i : i + 1, : src_len[i]], src_len[i : i + 1]
            expected_lp, expected_attention = rescore(model, *alone, generated)
            assert log_prob == pytest.approx(expected_lp, abs=1e-4)
            torch.testing.assert_close(attention, expected_attention, atol=1e-5, rtol=1e-4)


def test_greedy_scores_are_the_log_probs_of_its_tokens():
    # greedy and beam search correct only the chosen logits into log-probabilities; rescoring
    # with the full log-softmax must agree
    model = TinyGRU(seed=3, eos_bias=0.5)
    src, src_len = random_batch(3, batch=4)
    hyps = greedy(model, src, src_len, max_len=7)
    for i in range(len(src)):
        (tokens,), (score,), (log_prob,) = hyps.tokens[i], hyps.scores[i], hyps.log_probs[i]
        generated = tokens + [EOS] * (len(tokens) < 7)
        expected_lp, _ = rescore(model, src[i : i + 1, : src_len[i]], src_len[i : i + 1], generated)
        assert score == log_prob == pytest.approx(expected_lp, abs=1e-4)


def test_per_row_max_length_is_respected():
    # EOS made impossible, so every hypothesis runs to its limit and is cut there
    model = TinyGRU(seed=6, eos_bias=-1e9)
    src, src_len = random_batch(6)
    limits = max_output_length(src_len, a=0.5, b=1)
    assert limits.tolist() == [int(0.5 * n + 1) for n in src_len.tolist()]
    for hyps in (
        greedy(model, src, src_len, max_len=limits),
        beam_search(model, src, src_len, beam_size=3, n_best=3, length_penalty=1.0, max_len=limits),
    ):
        for tokens, limit in zip(hyps.tokens, limits.tolist()):
            assert [len(t) for t in tokens] == [limit] * len(tokens)
    hyps = beam_search(model, src, src_len, beam_size=2, max_len=4)
    assert all(len(t) == 4 for nbest in hyps.tokens for t in nbest)


def test_attention_has_one_row_per_generated_token():
    model = TinyGRU(seed=7, eos_bias=1.5)
    src, src_len = random_batch(7)
    for hyps in (
        greedy(model, src, src_len, max_len=8, need_attention=True),
        beam_search(model, src, src_len, beam_size=4, n_best=2, max_len=8, need_attention=True),
    ):
        ended = 0
        for tokens, attention, n in zip(hyps.tokens, hyps.attention, src_len.tolist()):
            for toks, attn in zip(tokens, attention):
                rows = len(toks) + (len(toks) < 8)  # the EOS has its row
                ended += len(toks) < 8
                assert attn.shape == (rows, n)
                torch.testing.assert_close(attn.sum(-1), torch.ones(rows))
        assert ended > 0
    no_attention = TinyGRU(seed=7, attention=False)
    assert greedy(no_attention, src, src_len, max_len=8, need_attention=True).attention is None
    assert beam_search(no_attention, src, src_len, beam_size=2, max_len=8, need_attention=True).attention is None
    assert greedy(model, src, src_len, max_len=8).attention is None  # not asked for: not collected


def test_bad_arguments_are_refused():
    model = TinyGRU(seed=0)
    src, src_len = random_batch(0, batch=2)
    with pytest.raises(ValueError):
        beam_search(model, src, src_len, beam_size=2, n_best=3, max_len=5)
    with pytest.raises(ValueError):
        greedy(model, src, src_len, max_len=0)


@pytest.mark.parametrize("arch", ["rnn", "transformer"])
def test_search_decodes_without_dropout_whatever_mode_the_model_was_left_in(arch):
    from nmt.config import ModelConfig
    from nmt.models.seq2seq import RNNSeq2Seq
    from nmt.models.transformer import Transformer

    cfg = ModelConfig(
        arch=arch,
        emb_size=16,
        enc_hidden=16,
        dec_hidden=16,
        d_model=16,
        heads=2,
        ff_size=32,
        enc_layers=1,
        dec_layers=1,
        dropout=0.5,
    )
    model = (
        RNNSeq2Seq(cfg, src_vocab_size=20, trg_vocab_size=20)
        if arch == "rnn"
        else Transformer(cfg, src_vocab_size=20, trg_vocab_size=20, shared_vocab=False)
    )
    src, src_len = torch.randint(4, 20, (6, 5)), torch.full((6,), 5)
    model.train()
    runs = [greedy(model, src, src_len, max_len=8) for _ in range(2)]
    runs += [beam_search(model, src, src_len, beam_size=3, max_len=8) for _ in range(2)]
    assert runs[0].tokens == runs[1].tokens and runs[0].scores == runs[1].scores
    assert runs[2].tokens == runs[3].tokens and runs[2].scores == runs[3].scores
    assert model.training  # given back as it was
    model.eval()
    assert greedy(model, src, src_len, max_len=8).scores == runs[0].scores and not model.training


def test_a_beam_of_one_with_a_length_penalty_may_prefer_a_longer_output_than_greedy_search():
    """Why the Translator runs a beam of 1, not greedy search, when a length penalty is given:
    where greedy search stops (EOS first, 0.55), a beam of 1 keeps the best hypothesis that goes
    on (A A A A, 0.45 * 0.99 ** 3), and the penalty can make the longer one win."""
    model = TableModel({A: {(): {EOS: 0.55, A: 0.45}, **{(A,) * n: {A: 0.99, EOS: 0.01} for n in (1, 2, 3)}}})
    src, src_len = table_src(A)
    assert greedy(model, src, src_len, max_len=10).tokens == [[[]]]
    assert beam_search(model, src, src_len, beam_size=1, max_len=10).tokens == [[[]]]
    assert beam_search(model, src, src_len, beam_size=1, length_penalty=3.0, max_len=10).tokens == [[[A, A, A, A]]]


def test_hypotheses_stopped_by_the_length_limit_are_marked_cut():
    model = TableModel({A: SHORT_OR_LONG})
    src, src_len = table_src(A)
    # A A A A EOS needs 5 tokens: with 3 allowed the beam's hypotheses are cut, B EOS is not
    hyps = beam_search(model, src, src_len, beam_size=2, n_best=2, max_len=3)
    assert {tuple(t): cut for t, cut in zip(hyps.tokens[0], hyps.cut[0])} == {(B,): False, (A, A, A): True}
    assert greedy(model, src, src_len, max_len=1).cut == [[True]]  # the limit came before any EOS
    assert greedy(model, src, src_len, max_len=5).cut == [[False]]


def test_search_options_resolve_the_default_beam_once():
    assert SearchOptions().beam == DEFAULT_BEAM and not SearchOptions().greedy
    assert SearchOptions(n_best=8).beam == 8  # a default beam holds the n-best asked for
    assert SearchOptions(beam_size=1).greedy and not SearchOptions(beam_size=1, length_penalty=1.0).greedy
    assert SearchOptions(sample=True).beam == 1 and not SearchOptions(sample=True).greedy
    assert SearchOptions().penalty == DEFAULT_LENGTH_PENALTY


@pytest.mark.parametrize(
    "options",
    [{}, {"n_best": 8}, {"beam_size": 1}, {"beam_size": 1, "length_penalty": 0.6}, {"sample": True, "n_best": 3}],
)
def test_resolved_search_options_write_out_their_defaults_and_search_the_same(options):
    given = SearchOptions(**options)
    resolved = given.resolved()
    assert resolved.beam_size == given.beam
    assert (resolved.greedy, resolved.sample, resolved.beam) == (given.greedy, given.sample, given.beam)
    if given.greedy or given.sample:
        assert resolved.length_penalty is None
    else:
        assert resolved.length_penalty == given.penalty
    assert resolved.resolved() == resolved


@pytest.mark.parametrize(
    "options, message",
    [
        ({"beam_size": 0}, "the beam size must be at least 1, not 0"),
        ({"beam_size": 2, "n_best": 3}, "n-best must be between 1 and the beam size (2), not 3"),
        ({"sample": True, "beam_size": 4}, "sampling draws one token at a time"),
        ({"sample": True, "length_penalty": 1.0}, "sampling draws one token at a time"),
        ({"top_k": 5}, "tune sampling only"),
        ({"seed": 1}, "tune sampling only"),
        ({"sample": True, "temperature": 0.0}, "the temperature must be above 0"),
        ({"max_len": 0}, "the output length limit must be at least 1"),
        ({"max_len_a": 0.0, "max_len_b": 0.0}, "leaves no room for a token"),
        ({"max_len_cap": 0}, "the cap on output length must be at least 1"),
    ],
)
def test_search_options_that_no_search_can_run_are_refused_when_made(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SearchOptions(**options)


def test_search_dispatches_to_greedy_beam_or_sampling_as_the_options_say():
    model = TinyGRU(seed=3)
    src, src_len = random_batch(3, batch=4)
    assert search(model, src, src_len, SearchOptions(beam_size=1), max_len=8) == greedy(model, src, src_len, max_len=8)
    beam = beam_search(model, src, src_len, beam_size=3, n_best=2, length_penalty=0.5, max_len=8)
    assert search(model, src, src_len, SearchOptions(beam_size=3, n_best=2, length_penalty=0.5), max_len=8) == beam
    drawn = search(model, src, src_len, SearchOptions(sample=True, n_best=2), max_len=8, generator=torch.Generator())
    assert all(len(tokens) == 2 for tokens in drawn.tokens)
