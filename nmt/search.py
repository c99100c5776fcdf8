"""Greedy and beam search, for any model that offers the interface in nmt.models.interface.

Both search a whole batch at once; beam search puts the k hypotheses of every sentence on
consecutive rows (row b*k + j is beam j of sentence b), so one ``model.step`` serves them all
and choosing the next beams is a top-k per sentence, with no loop over sentences or beams.
A Python loop remains over time steps only.

A limit on the output, ``max_len``, counts generated tokens with the EOS included; it is an
int or a (batch,) tensor of per-sentence limits, e.g. ``max_output_length(src_len)``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.specials import EOS, PAD, SOS

MaxLen = int | Tensor
NEG_INF = float("-inf")


@dataclass
class Hypotheses:
    """Per sentence, an n-best list, best first.

    tokens: token ids, without SOS and without the final EOS.
    scores: what the ranking used: the log-probability divided by the length penalty.
    log_probs: the model's log-probability of the hypothesis, its EOS included when it has one.
    attention: per hypothesis a (steps, src_len) tensor with one row per generated token, the
        EOS included, so it has one row more than ``tokens`` when the hypothesis ended with EOS;
        None when the model's ``step`` gives no attention.
    cut: per hypothesis, whether the length limit stopped it before any EOS (its score then
        includes no end-of-sentence probability, which flatters it against ended ones).
    """

    tokens: list[list[list[int]]]
    scores: list[list[float]]
    log_probs: list[list[float]]
    attention: list[list[Tensor]] | None
    cut: list[list[bool]]


def max_output_length(src_len: Tensor, *, a: float = 1.5, b: float = 10) -> Tensor:
    """Per-sentence limit on generated tokens: floor(a * src_len + b)."""
    return (a * src_len.float() + b).long()  # (batch,)


def _searching(search):
    """Run ``search`` in inference mode with the model in eval mode, whatever mode the caller left
    it in (dropout would make the output random), and give the model back in that mode."""

    @functools.wraps(search)
    def run(model, *args, **kwargs):
        training = isinstance(model, nn.Module) and model.training  # the interface needs no nn.Module
        if training:
            model.eval()
        try:
            with torch.inference_mode():
                return search(model, *args, **kwargs)
        finally:
            if training:
                model.train()

    return run


@_searching
def greedy(model, src: Tensor, src_len: Tensor, *, max_len: MaxLen, need_attention: bool = False) -> Hypotheses:
    """The most probable next token at every step, for every sentence of the batch at once.

    A sentence stops at its EOS or its limit; the loop stops when every sentence has.
    Its score is its log-probability (greedy search uses no length penalty). Attention is
    collected only with ``need_attention`` (for plots), and only from models that give it.
    """
    batch, device = src.size(0), src.device
    limit = _limits(max_len, batch, device)
    encoded = model.encode(src, src_len)
    state = model.init_state(encoded)
    prev = torch.full((batch,), SOS, dtype=torch.long, device=device)  # (batch,)
    log_prob = torch.zeros(batch, device=device)  # (batch,)
    steps = torch.zeros(batch, dtype=torch.long, device=device)  # (batch,) tokens generated, EOS included
    stopped = torch.zeros(batch, dtype=torch.bool, device=device)  # (batch,)
    tokens, attention = [], []
    for _ in range(int(limit.max())):
        logits, state, attn = model.step(prev, state, encoded)
        best, prev = _log_probs(logits).max(dim=-1)  # (batch,), (batch,)
        # stopped sentences still go through the model with the batch, but add nothing
        log_prob += best.masked_fill(stopped, 0.0)
        steps += (~stopped).long()
        tokens.append(prev)
        if need_attention and attn is not None:
            attention.append(attn)
        stopped |= (prev == EOS) | (steps >= limit)
        if stopped.all():
            break
    return _collect(
        seqs=torch.stack(tokens, dim=1)[:, None],  # (batch, 1, steps)
        steps=steps[:, None],
        scores=log_prob[:, None],
        log_probs=log_prob[:, None],
        attention=torch.stack(attention, dim=1)[:, None] if attention else None,  # (batch, 1, steps, src_len)
        src_len=src_len,
    )


def check_search_options(*, beam_size: int, n_best: int) -> None:
    """Raise ValueError, with a message for the user, for a beam no search can run."""
    if beam_size < 1:
        raise ValueError(f"the beam size must be at least 1, not {beam_size}")
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n-best must be between 1 and the beam size ({beam_size}), not {n_best}")


@_searching
def beam_search(
    model,
    src: Tensor,
    src_len: Tensor,
    *,
    beam_size: int,
    length_penalty: float = 0.0,
    n_best: int = 1,
    max_len: MaxLen,
    need_attention: bool = False,
) -> Hypotheses:
    """Beam search over every sentence of the batch and every beam at once.

    A hypothesis that emits EOS is finished; one still live at its sentence's limit is finished
    there, as it is. Finished hypotheses are ranked by GNMT's length normalisation,
    logprob / ((5 + length) / 6) ** length_penalty, with length the tokens generated, EOS
    included; 0 ranks by the raw log-probability. A sentence is done once its ``n_best``
    finished hypotheses all score at least what its best live hypothesis could still reach.
    With ``need_attention`` the attention history is carried along with the beams (it costs
    time and memory that grow with the square of the output length, so only plots ask for it).
    """
    check_search_options(beam_size=beam_size, n_best=n_best)
    batch, k, device = src.size(0), beam_size, src.device
    limit = _limits(max_len, batch, device)
    longest = int(limit.max())
    encoded = model.encode(src, src_len)
    state = model.init_state(encoded)
    tile = torch.arange(batch, device=device).repeat_interleave(k)  # (batch*k,)
    state = model.reorder(state, tile)
    encoded = encoded.index_select(tile)

    def penalty(length):
        return ((5.0 + length) / 6.0) ** length_penalty

    sentences = torch.arange(batch, device=device)[:, None]  # (batch, 1), pairs with a (batch, m) index
    rank = torch.arange(2 * k, device=device)  # (2k,)
    prev = torch.full((batch * k,), SOS, dtype=torch.long, device=device)  # (batch*k,)
    # only beam 0 is live at first, or step one would give k copies of every hypothesis
    alive = torch.full((batch, k), NEG_INF, device=device)  # (batch, k) summed log-probs
    alive[:, 0] = 0.0
    seqs = torch.zeros((batch, k, 0), dtype=torch.long, device=device)  # (batch, k, steps)
    attns = None  # (batch, k, steps, src_len) once the model has given attention
    finished = _Finished(batch=batch, n=n_best, max_steps=longest, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)  # (batch,)
    for t in range(longest):
        logits, state, attn = model.step(prev, state, encoded)
        log_probs = _log_probs(logits).view(batch, k, -1)  # (batch, k, vocab)
        vocab = log_probs.size(-1)
        # 2k candidates: at most k of them end in EOS (one per beam), so k are left to go on
        cand_lp, flat = (alive[:, :, None] + log_probs).view(batch, -1).topk(2 * k, dim=1)  # (batch, 2k)
        parent, token = flat // vocab, flat % vocab  # (batch, 2k)
        cand_seqs = torch.cat([seqs[sentences, parent], token[:, :, None]], dim=2)  # (batch, 2k, t+1)
        cand_attns = None
        if need_attention and attn is not None:
            attn = attn.view(batch, k, 1, -1)  # (batch, k, 1, src_len)
            attns = attn if attns is None else torch.cat([attns, attn], dim=2)  # (batch, k, t+1, src_len)
            cand_attns = attns[sentences, parent]  # (batch, 2k, t+1, src_len)
        at_limit = t + 1 >= limit  # (batch,)
        # Only a candidate that would have entered the beam may finish, which keeps beam 1 equal
        # to greedy; a sentence that is done takes no more.
        finishing = (rank < k) & ((token == EOS) | at_limit[:, None]) & ~done[:, None]  # (batch, 2k)
        if finishing.any():
            finished.add(finishing, score=cand_lp / penalty(t + 1), log_prob=cand_lp, seqs=cand_seqs, attns=cand_attns)
        # the k best candidates that did not end go on; the stable sort keeps them in rank order
        keep = (token == EOS).int().sort(dim=1, stable=True).indices[:, :k]  # (batch, k)
        alive = cand_lp.gather(1, keep)
        seqs = cand_seqs[sentences, keep]
        if cand_attns is not None:
            attns = cand_attns[sentences, keep]
        prev = token.gather(1, keep).view(-1)  # (batch*k,)
        state = model.reorder(state, (sentences * k + parent.gather(1, keep)).view(-1))
        # A live log-prob can only fall, so the best score a live hypothesis can still reach is
        # today's over the largest length penalty ahead of it, at one end of its lengths t+2..limit.
        reachable = alive[:, 0] / penalty(limit.float()).clamp(min=penalty(t + 2.0))  # (batch,)
        done |= at_limit | (finished.score[:, -1] >= reachable)
        if done.all():
            break
    return _collect(
        seqs=finished.seqs,
        steps=finished.steps,
        scores=finished.score,
        log_probs=finished.log_prob,
        attention=finished.attns,
        src_len=src_len,
    )


class _Finished:
    """The n best finished hypotheses of every sentence, held as padded tensors, so that
    adding those that finish at a step is one top-k rather than a loop over them."""

    def __init__(self, *, batch: int, n: int, max_steps: int, device):
        self.score = torch.full((batch, n), NEG_INF, device=device)  # (batch, n), -inf = empty slot
        self.log_prob = torch.full((batch, n), NEG_INF, device=device)  # (batch, n)
        self.steps = torch.zeros((batch, n), dtype=torch.long, device=device)  # (batch, n)
        self.seqs = torch.full((batch, n, max_steps), PAD, dtype=torch.long, device=device)  # (batch, n, max_steps)
        self.attns = None  # (batch, n, max_steps, src_len) once the model has given attention
        self.sentences = torch.arange(batch, device=device)[:, None]  # (batch, 1)

    def add(self, finishing: Tensor, *, score: Tensor, log_prob: Tensor, seqs: Tensor, attns: Tensor | None):
        """Merge in the candidates (batch, cands) where ``finishing`` is True."""
        batch, n, max_steps = self.seqs.shape
        steps = seqs.size(-1)
        merged = torch.cat([self.score, score.masked_fill(~finishing, NEG_INF)], dim=1).topk(n, dim=1)
        pick = merged.indices  # (batch, n), into the kept ones followed by the candidates
        self.score = merged.values
        self.log_prob = torch.cat([self.log_prob, log_prob], dim=1).gather(1, pick)
        self.steps = torch.cat([self.steps, torch.full_like(finishing, steps, dtype=torch.long)], dim=1).gather(1, pick)
        seqs = F.pad(seqs, (0, max_steps - steps), value=PAD)  # (batch, cands, max_steps)
        self.seqs = torch.cat([self.seqs, seqs], dim=1)[self.sentences, pick]
        if attns is not None:
            if self.attns is None:
                self.attns = attns.new_zeros(batch, n, max_steps, attns.size(-1))
            attns = F.pad(attns, (0, 0, 0, max_steps - steps))  # (batch, cands, max_steps, src_len)
            self.attns = torch.cat([self.attns, attns], dim=1)[self.sentences, pick]


def _limits(max_len: MaxLen, batch: int, device) -> Tensor:
    limit = torch.as_tensor(max_len, device=device).long().expand(batch)  # (batch,)
    if bool((limit < 1).any()):
        raise ValueError("max_len must allow at least one token (the EOS)")
    return limit


def _log_probs(logits: Tensor) -> Tensor:
    """Log-softmax over the vocabulary, with PAD and SOS made impossible outputs. They are
    masked after the softmax, so the scores stay the model's own log-probabilities."""
    log_probs = logits.float().log_softmax(dim=-1)  # (rows, vocab)
    log_probs[:, [PAD, SOS]] = NEG_INF
    return log_probs


def _collect(
    *, seqs: Tensor, steps: Tensor, scores: Tensor, log_probs: Tensor, attention: Tensor | None, src_len: Tensor
) -> Hypotheses:
    """(batch, n, ...) tensors -> per-sentence lists; slots no hypothesis filled (-inf) are left out."""
    seqs, steps, scores, log_probs, src_len = (x.tolist() for x in (seqs, steps, scores, log_probs, src_len))
    attention = None if attention is None else attention.cpu()
    out = Hypotheses(tokens=[], scores=[], log_probs=[], attention=None if attention is None else [], cut=[])
    for i, sentence_scores in enumerate(scores):
        kept = [j for j, score in enumerate(sentence_scores) if score != NEG_INF]  # NaN (a broken model) is kept
        generated = [seqs[i][j][: steps[i][j]] for j in kept]
        out.tokens.append([_strip_eos(tokens) for tokens in generated])
        out.cut.append([not tokens or tokens[-1] != EOS for tokens in generated])
        out.scores.append([scores[i][j] for j in kept])
        out.log_probs.append([log_probs[i][j] for j in kept])
        if attention is not None:
            out.attention.append([attention[i, j, : steps[i][j], : src_len[i]] for j in kept])
    return out


def _strip_eos(tokens: list[int]) -> list[int]:
    return tokens[:-1] if tokens and tokens[-1] == EOS else tokens
