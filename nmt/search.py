"""Greedy search, sampling and beam search, for any model that offers the interface in
nmt.models.interface, and ``SearchOptions``, the settings every caller passes down to them.

All search a whole batch at once; beam search puts the k hypotheses of every sentence on
consecutive rows (row b*k + j is beam j of sentence b), so one ``model.step`` serves them all
(reading one copy of a sentence's encoder output for its k beams), and choosing the next beams
is a top-k per sentence, with no loop over sentences or beams. A Python loop remains over time
steps only. A sentence that is done leaves the batch, so the cost of a step follows the
sentences still being decoded, not the longest one of the batch.

A limit on the output, ``max_len``, counts generated tokens with the EOS included; it is an
int or a (batch,) tensor of per-sentence limits, e.g. ``SearchOptions().output_limits(src_len)``.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.specials import EOS, PAD, SOS

MaxLen = int | Tensor
NEG_INF = float("-inf")

DEFAULT_BEAM = 5
# GNMT's alpha: without a length penalty beam search prefers short outputs (docs/experiments.rst#search-settings)
DEFAULT_LENGTH_PENALTY = 1.0
# One line that never ends (a long source, an undertrained model) must not stall a file or a
# server: no output is longer than this, as in OpenNMT-py (250) and fairseq (200).
DEFAULT_MAX_LEN_CAP = 250
# Beam search on a CPU picks its candidates by blocks of BLOCK outputs from a step of BLOCKS_FROM
# log-probabilities on, with at least 8 blocks a beam: there it was faster than a top-k over
# every beam's outputs (docs/experiments.rst, "Beam candidates by blocks of the vocabulary").
BLOCK = 64
BLOCKS_FROM = 100_000


@dataclass(frozen=True)
class SearchOptions:
    """How to search: the one list of search settings, with their defaults and checks, that the
    command line, ``Translator`` and the server pass down to ``search``. Options that no search
    can run with raise ValueError with a message for the user when the object is made.

    beam_size: 1 is greedy search; None is DEFAULT_BEAM, or ``n_best`` if larger (1 when sampling).
    n_best: outputs per sentence, best first (with ``sample``, the number of samples).
    length_penalty: GNMT's alpha for ranking beam hypotheses, logprob / ((5 + length) / 6) ** alpha;
        None is DEFAULT_LENGTH_PENALTY for a beam and none for greedy search. Given with beam 1
        it runs a beam of width 1, which honours it (and may prefer a longer output than greedy).
    max_len: a fixed limit on output tokens, the EOS included; when None the limit of a sentence is
        ``max_len_a * source tokens + max_len_b``, and never above ``max_len_cap``.
    sample: draw each token from the model's distribution instead of searching (``nmt.search.sample``
        explains ``temperature``, ``top_k`` and ``top_p``); the same ``seed`` and lines give the same samples.
    """

    beam_size: int | None = None
    n_best: int = 1
    length_penalty: float | None = None
    max_len: int | None = None
    max_len_a: float = 1.5
    max_len_b: float = 10
    max_len_cap: int = DEFAULT_MAX_LEN_CAP
    sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self):
        if self.sample:
            if self.beam != 1 or self.length_penalty is not None:
                raise ValueError(
                    "sampling draws one token at a time: it takes no beam size and no length penalty (--beam, "
                    "--length-penalty)"
                )
            check_sampling_options(n=self.n_best, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)
        else:
            check_search_options(beam_size=self.beam, n_best=self.n_best)
            tuned = (self.temperature, self.top_k, self.top_p, self.seed) != (1.0, 0, 1.0, None)
            if tuned:
                raise ValueError(
                    "the temperature, top-k, top-p and seed tune sampling only: turn sampling on "
                    "(sample=True, --sample)"
                )
        if self.max_len is not None and self.max_len < 1:
            raise ValueError(
                f"the output length limit must be at least 1 (it counts the end-of-sentence token), not {self.max_len}"
            )
        if self.max_len is None and (self.max_len_a < 0 or self.max_len_a + self.max_len_b < 1):
            raise ValueError(
                f"an output limit of {self.max_len_a} * source length + {self.max_len_b} leaves no room for a token"
            )
        if self.max_len_cap < 1:
            raise ValueError(f"the cap on output length must be at least 1, not {self.max_len_cap}")

    @property
    def beam(self) -> int:
        """The beam size searched with: ``beam_size``, or its default."""
        if self.beam_size is not None:
            return self.beam_size
        return 1 if self.sample else max(DEFAULT_BEAM, self.n_best)

    @property
    def greedy(self) -> bool:
        """Whether this is plain greedy search: one path, ranked by log-probability alone."""
        return not self.sample and self.beam == 1 and self.n_best == 1 and not self.length_penalty

    @property
    def penalty(self) -> float:
        """The length penalty a beam search ranks by."""
        return DEFAULT_LENGTH_PENALTY if self.length_penalty is None else self.length_penalty

    def resolved(self) -> SearchOptions:
        """The same search with its defaults written out (the beam size, a beam's length penalty),
        for records that should still say what ran after a default changes."""
        ranked = not self.sample and not self.greedy
        return dataclasses.replace(self, beam_size=self.beam, length_penalty=self.penalty if ranked else None)

    def output_limits(self, src_len: Tensor) -> Tensor:
        """(batch,) the most tokens each sentence's output may have, its EOS included."""
        if self.max_len is not None:
            return torch.full_like(src_len, self.max_len)
        return max_output_length(src_len, a=self.max_len_a, b=self.max_len_b).clamp(max=self.max_len_cap)


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

    def sorted(self) -> Hypotheses:
        """The same hypotheses, each sentence's best first (for outputs not found in rank order)."""
        orders = [sorted(range(len(scores)), key=lambda j: -scores[j]) for scores in self.scores]

        def each(lists):
            return None if lists is None else [[per[j] for j in order] for per, order in zip(lists, orders)]

        return Hypotheses(*(each(getattr(self, f.name)) for f in fields(self)))


def max_output_length(src_len: Tensor, *, a: float = 1.5, b: float = 10) -> Tensor:
    """Per-sentence limit on generated tokens: floor(a * src_len + b)."""
    return (a * src_len.float() + b).long()  # (batch,)


def search(
    model,
    src: Tensor,
    src_len: Tensor,
    options: SearchOptions,
    *,
    max_len: MaxLen,
    need_attention: bool = False,
    generator: torch.Generator | None = None,
) -> Hypotheses:
    """The search ``options`` ask for over one batch: greedy, beam or sampling. ``max_len`` is the
    limit the caller settled (``options.output_limits`` and any limit of the model's own)."""
    if options.sample:
        return sample(
            model,
            src,
            src_len,
            max_len=max_len,
            n=options.n_best,
            temperature=options.temperature,
            top_k=options.top_k,
            top_p=options.top_p,
            generator=generator,
        )
    if options.greedy:
        return greedy(model, src, src_len, max_len=max_len, need_attention=need_attention)
    return beam_search(
        model,
        src,
        src_len,
        beam_size=options.beam,
        length_penalty=options.penalty,
        n_best=options.n_best,
        max_len=max_len,
        need_attention=need_attention,
    )


def _searching(fn):
    """Run ``fn``, a search, in inference mode with the model in eval mode, whatever mode the caller left
    it in (dropout would make the output random), and give the model back in that mode."""

    @functools.wraps(fn)
    def run(model, *args, **kwargs):
        training = isinstance(model, nn.Module) and model.training  # the interface needs no nn.Module
        if training:
            model.eval()
        try:
            with torch.inference_mode():
                return fn(model, *args, **kwargs)
        finally:
            if training:
                model.train()

    return run


@_searching
def greedy(
    model, src: Tensor, src_len: Tensor, *, max_len: MaxLen, need_attention: bool = False, sync_every: int | None = None
) -> Hypotheses:
    """The most probable next token at every step, for every sentence of the batch at once.

    A sentence stops at its EOS or its limit, and then leaves the batch; the loop stops when
    every sentence has. Its score is its log-probability (greedy search uses no length penalty).
    Attention is collected only with ``need_attention`` (for plots), and only from models that
    give it. ``sync_every``: see ``_sync_interval``.
    """
    return _single_path(
        model,
        src,
        src_len,
        choose=_most_probable,
        copies=1,
        max_len=max_len,
        need_attention=need_attention,
        sync_every=sync_every,
    )


@_searching
def sample(
    model,
    src: Tensor,
    src_len: Tensor,
    *,
    max_len: MaxLen,
    n: int = 1,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    sync_every: int | None = None,
) -> Hypotheses:
    """``n`` outputs per sentence, each token drawn from the model's distribution: what
    back-translation wants, where the most probable output is too bland to teach from.

    The distribution a token is drawn from is the model's divided by ``temperature``, cut to the
    ``top_k`` most probable tokens (0: no cut) and then to the smallest set whose probability
    reaches ``top_p`` (nucleus sampling; 1.0: no cut). The score of a sample is its
    log-probability under the model itself, untempered and uncut, and a sentence's samples come
    best first. The same ``generator`` state, input and batch give the same samples.
    """
    check_sampling_options(n=n, temperature=temperature, top_k=top_k, top_p=top_p)
    draw = functools.partial(_draw, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
    hyps = _single_path(
        model, src, src_len, choose=draw, copies=n, max_len=max_len, need_attention=False, sync_every=sync_every
    )
    return hyps.sorted()


def check_sampling_options(*, n: int, temperature: float, top_k: int, top_p: float) -> None:
    """Raise ValueError, with a message for the user, for sampling options that draw nothing."""
    if n < 1:
        raise ValueError(f"the number of samples must be at least 1, not {n}")
    if not temperature > 0:
        raise ValueError(f"the temperature must be above 0, not {temperature}")
    if top_k < 0:
        raise ValueError(f"top-k must be 0 (no cut) or more, not {top_k}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top-p must be in (0, 1], not {top_p}")


def _most_probable(log_probs: Tensor) -> tuple[Tensor, Tensor]:
    """(rows, vocab) -> each row's best token and its log-probability, (rows,) each."""
    best, token = log_probs.max(dim=-1)
    return token, best


def _draw(
    log_probs: Tensor, *, temperature: float, top_k: int, top_p: float, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """(rows, vocab) -> a token drawn for each row and its (untempered) log-probability."""
    logits = log_probs / temperature  # (rows, vocab), PAD and SOS already -inf
    if top_k:
        kth = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[:, -1:]  # (rows, 1)
        logits = logits.masked_fill(logits < kth, NEG_INF)
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # (rows, vocab): the mass of the more probable tokens
        # a token is cut when the more probable ones already reach top_p; the most probable never is
        cut = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order, before >= top_p)
        logits = logits.masked_fill(cut, NEG_INF)
    token = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)  # (rows,)
    return token, log_probs.gather(1, token[:, None]).squeeze(1)


def _single_path(
    model,
    src: Tensor,
    src_len: Tensor,
    *,
    choose,
    copies: int,
    max_len: MaxLen,
    need_attention: bool,
    sync_every: int | None,
) -> Hypotheses:
    """One token a step per output, ``choose``-n from the step's log-probabilities: greedy search
    and sampling. Every sentence gets ``copies`` outputs, on consecutive rows.

    Outputs are written into buffers preallocated for the longest one. Rows whose output has
    ended leave the batch (their decoder state and encoder output with them), so a step costs what
    the outputs still growing need, not what the batch began with.
    """
    batch, device = src.size(0), src.device
    outputs = batch * copies
    limit = _limits(max_len, batch, device).repeat_interleave(copies)  # (outputs,)
    longest = int(limit.max())
    encoded = model.encode(src, src_len)
    state = model.init_state(encoded)
    if copies > 1:
        tile = torch.arange(batch, device=device).repeat_interleave(copies)  # (outputs,)
        state, encoded = model.reorder(state, tile), encoded.index_select(tile)
    tokens = torch.full((outputs, longest), PAD, dtype=torch.long, device=device)  # (outputs, longest)
    log_prob = torch.zeros(outputs, device=device)  # (outputs,)
    steps = torch.zeros(outputs, dtype=torch.long, device=device)  # (outputs,) tokens generated, EOS included
    attention = None  # (outputs, longest, src_len) once the model has given attention
    # the live rows: which output each writes, its token, its limit, and whether it has ended
    rows = torch.arange(outputs, device=device)  # (live,)
    prev = torch.full((outputs,), SOS, dtype=torch.long, device=device)  # (live,)
    live_limit = limit  # (live,)
    stopped = torch.zeros(outputs, dtype=torch.bool, device=device)  # (live,)
    every = _sync_interval(sync_every, device)
    for t in range(longest):
        logits, state, attn = model.step(prev, state, encoded, need_attention=need_attention)
        prev, chosen = choose(_log_probs(logits))  # (live,), (live,)
        tokens[rows, t] = prev
        # a row that has ended but not yet left the batch adds nothing
        log_prob.index_add_(0, rows, chosen.masked_fill(stopped, 0.0))
        steps.index_add_(0, rows, (~stopped).long())
        if need_attention and attn is not None:
            if attention is None:
                attention = attn.new_zeros(outputs, longest, attn.size(-1))
            attention[rows, t] = attn
        stopped |= (prev == EOS) | (t + 1 >= live_limit)
        if (t + 1) % every == 0:
            going = (~stopped).nonzero().squeeze(1)  # (still live,): the host sync
            if going.numel() == 0:
                break
            if going.numel() < rows.numel():
                rows, prev, live_limit, stopped = rows[going], prev[going], live_limit[going], stopped[going]
                state, encoded = model.reorder(state, going), encoded.index_select(going)
    return _collect(
        seqs=tokens.view(batch, copies, longest),
        steps=steps.view(batch, copies),
        scores=log_prob.view(batch, copies),
        log_probs=log_prob.view(batch, copies),
        attention=None if attention is None else attention.view(batch, copies, longest, -1),
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
    sync_every: int | None = None,
) -> Hypotheses:
    """Beam search over every sentence of the batch and every beam at once.

    A hypothesis that emits EOS is finished; one still live at its sentence's limit is finished
    there, as it is. Finished hypotheses are ranked by GNMT's length normalisation,
    logprob / ((5 + length) / 6) ** length_penalty, with length the tokens generated, EOS
    included; 0 ranks by the raw log-probability. A sentence is done once its ``n_best``
    finished hypotheses all score at least what its best live hypothesis could still reach, and
    then leaves the batch, its beams' decoder state and encoder output with it.
    With ``need_attention`` the attention history is carried along with the beams (it costs
    time and memory that grow with the square of the output length, so only plots ask for it).
    ``sync_every``: see ``_sync_interval``.
    """
    check_search_options(beam_size=beam_size, n_best=n_best)
    batch, k, device = src.size(0), beam_size, src.device
    limit = _limits(max_len, batch, device)
    longest = int(limit.max())
    encoded = model.encode(src, src_len)
    # The first step reads one row per sentence: its k beams would all be SOS in the same state.
    # After it, every beam has a decoder state of its own; the encoder output stays one row per
    # sentence, which the model's step reads for all k of its beams.
    state = model.init_state(encoded)  # (batch,) rows, then (live*k,)

    def penalty(length):
        return ((5.0 + length) / 6.0) ** length_penalty

    rank = torch.arange(2 * k, device=device)  # (2k,)
    finished = _Finished(batch=batch, n=n_best, max_steps=longest, device=device)
    # The live sentences: which sentence each is, its limit, whether it is done, and its k
    # hypotheses (row b*k + j of the model's batch is beam j of live sentence b).
    sentence = torch.arange(batch, device=device)  # (live,)
    live_limit = limit  # (live,)
    done = torch.zeros(batch, dtype=torch.bool, device=device)  # (live,)
    prev = torch.full((batch,), SOS, dtype=torch.long, device=device)  # (batch,), then (live*k,)
    # only beam 0 is live at first, or step one would give k copies of every hypothesis
    alive = torch.full((batch, k), NEG_INF, device=device)  # (live, k) summed log-probs
    alive[:, 0] = 0.0
    seqs = torch.full((batch, k, longest), PAD, dtype=torch.long, device=device)  # (live, k, longest)
    attns = None  # (live, k, steps, src_len) once the model has given attention
    every = _sync_interval(sync_every, device)
    for t in range(longest):
        live = sentence.numel()
        within = torch.arange(live, device=device)[:, None]  # (live, 1), pairs with a (live, m) index
        logits, state, attn = model.step(prev, state, encoded, need_attention=need_attention)
        log_probs = _log_probs(logits)  # (live*k, vocab)
        if t == 0:  # the one row of each sentence stands for its k beams
            log_probs = log_probs.repeat_interleave(k, dim=0)
            attn = None if attn is None else attn.repeat_interleave(k, dim=0)
        # 2k candidates: at most k of them end in EOS (one per beam), so k are left to go on
        cand_lp, parent, token = best_continuations(log_probs, alive, 2 * k)  # (live, 2k) each
        cand_seqs = seqs[within, parent]  # (live, 2k, longest)
        cand_seqs[:, :, t] = token
        cand_attns = None
        if need_attention and attn is not None:
            attn = attn.view(live, k, 1, -1)  # (live, k, 1, src_len)
            attns = attn if attns is None else torch.cat([attns, attn], dim=2)  # (live, k, t+1, src_len)
            cand_attns = attns[within, parent]  # (live, 2k, t+1, src_len)
        at_limit = t + 1 >= live_limit  # (live,)
        # Only a candidate that would have entered the beam may finish, which keeps beam 1 equal
        # to greedy; a sentence that is done takes no more.
        finishing = (rank < k) & ((token == EOS) | at_limit[:, None]) & ~done[:, None]  # (live, 2k)
        finished.add(
            sentence,
            finishing,
            steps=t + 1,
            score=cand_lp / penalty(t + 1),
            log_prob=cand_lp,
            seqs=cand_seqs,
            attns=cand_attns,
        )
        # the k best candidates that did not end go on; the stable sort keeps them in rank order
        keep = (token == EOS).int().sort(dim=1, stable=True).indices[:, :k]  # (live, k)
        alive = cand_lp.gather(1, keep)
        seqs = cand_seqs[within, keep]
        if cand_attns is not None:
            attns = cand_attns[within, keep]
        prev = token.gather(1, keep)  # (live, k)
        # (live, k): the model rows the kept ones grow from; at the first step, each sentence's one row
        beams = within * k + parent.gather(1, keep) if t > 0 else within.expand(-1, k)
        # A live log-prob can only fall, so the best score a live hypothesis can still reach is
        # today's over the largest length penalty ahead of it, at one end of its lengths t+2..limit.
        reachable = alive[:, 0] / penalty(live_limit.float()).clamp(min=penalty(t + 2.0))  # (live,)
        done |= at_limit | (finished.score[sentence, -1] >= reachable)
        if (t + 1) % every == 0:
            going = (~done).nonzero().squeeze(1)  # (still live,): the host sync
            if going.numel() == 0:
                break
            if going.numel() < live:
                sentence, live_limit, done = sentence[going], live_limit[going], done[going]
                prev, alive, seqs, beams = prev[going], alive[going], seqs[going], beams[going]
                attns = None if attns is None else attns[going]
                encoded = encoded.index_select(going)
        prev = prev.view(-1)
        state = model.reorder(state, beams.reshape(-1))  # one reorder both follows the beams and drops the done
    return _collect(
        seqs=finished.seqs,
        steps=finished.steps,
        scores=finished.score,
        log_probs=finished.log_prob,
        attention=finished.attns,
        src_len=src_len,
    )


def top_continuations(log_probs: Tensor, alive: Tensor, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """The ``n`` best continuations of each sentence's beams, best first: log_probs (live*k, vocab)
    of the next token on each beam's row, alive (live, k) the beams' summed log-probabilities ->
    (live, n) each: the continuations' summed log-probabilities, the beam each grows, its token.

    A sentence's n best continuations are among the n best of each of its beams, so a top-k per
    beam first leaves a top-k over k*n candidates instead of over k*vocab."""
    live, k = alive.shape
    width = min(n, log_probs.size(-1))
    beam_lp, beam_token = log_probs.topk(width, dim=1)  # (live*k, width)
    cand_lp, flat = (alive.view(-1, 1) + beam_lp).view(live, k * width).topk(n, dim=1)  # (live, n)
    return cand_lp, flat // width, beam_token.view(live, k * width).gather(1, flat)


def top_continuations_by_blocks(
    log_probs: Tensor, alive: Tensor, n: int, *, block: int = BLOCK
) -> tuple[Tensor, Tensor, Tensor]:
    """``top_continuations`` with less of torch's top-k, which on a CPU is a scalar partial sort
    of each row: over thousands of outputs on every beam, the search's costliest part outside the
    model's step.

    Each beam's outputs are cut into blocks of ``block`` tokens. The best of a block bounds all
    of its tokens, so a sentence's n best continuations lie in its n best blocks, over all its
    beams: a continuation outside them would have n better ones, the bests of those blocks. The
    top-k then runs over the tokens of those n blocks, and over every beam's last vocab % block
    tokens, which no block holds. Needs at least n blocks a sentence (k * (vocab // block) >= n)."""
    live, k = alive.shape
    vocab = log_probs.size(-1)
    blocks = vocab // block
    whole = blocks * block  # the tokens in blocks; the last vocab % block of each beam are in none
    rest = vocab - whole
    log_probs = log_probs.view(live, k, vocab)
    blocked = log_probs[:, :, :whole].unflatten(-1, (blocks, block))  # (live, k, blocks, block)
    bests = alive[:, :, None] + blocked.amax(dim=-1)  # (live, k, blocks)
    chosen = bests.view(live, k * blocks).topk(n, dim=1).indices  # (live, n), numbered beam by beam
    beam, first = chosen // blocks, chosen % blocks * block  # (live, n): each chosen block's beam, first token
    within = torch.arange(live, device=alive.device)[:, None]  # (live, 1)
    in_blocks = blocked[within, beam, chosen % blocks] + alive.gather(1, beam)[:, :, None]  # (live, n, block)
    tails = log_probs[:, :, whole:] + alive[:, :, None]  # (live, k, rest)
    # the candidates of each sentence: the n blocks' tokens, then each beam's last tokens
    candidates = torch.cat([in_blocks.view(live, n * block), tails.reshape(live, k * rest)], dim=1)
    cand_lp, pick = candidates.topk(n, dim=1)  # (live, n)
    in_block = pick < n * block
    which = (pick // block).clamp(max=n - 1)  # the chosen block a pick in blocks is in
    tail = (pick - n * block).clamp(min=0)  # a pick in the tails: beam by beam, rest tokens each
    per_beam = max(rest, 1)  # (no tails when the blocks cover the vocabulary)
    cand_beam = torch.where(in_block, beam.gather(1, which), tail // per_beam)
    cand_token = torch.where(in_block, first.gather(1, which) + pick % block, whole + tail % per_beam)
    return cand_lp, cand_beam, cand_token


def best_continuations(log_probs: Tensor, alive: Tensor, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """``top_continuations`` by blocks where they pay: on a CPU (a GPU's top-k is not a scalar sort;
    blocks there are unmeasured), for a step large enough."""
    large = log_probs.numel() >= BLOCKS_FROM and log_probs.size(-1) >= 8 * BLOCK
    if large and log_probs.device.type == "cpu":
        return top_continuations_by_blocks(log_probs, alive, n)
    return top_continuations(log_probs, alive, n)


class _Finished:
    """The n best finished hypotheses of every sentence, held as padded tensors, so that
    adding those that finish at a step is one top-k rather than a loop over them."""

    def __init__(self, *, batch: int, n: int, max_steps: int, device):
        self.score = torch.full((batch, n), NEG_INF, device=device)  # (batch, n), -inf = empty slot
        self.log_prob = torch.full((batch, n), NEG_INF, device=device)  # (batch, n)
        self.steps = torch.zeros((batch, n), dtype=torch.long, device=device)  # (batch, n)
        self.seqs = torch.full((batch, n, max_steps), PAD, dtype=torch.long, device=device)  # (batch, n, max_steps)
        self.attns = None  # (batch, n, max_steps, src_len) once the model has given attention

    def add(
        self, sentence: Tensor, finishing: Tensor, *, steps: int, score: Tensor, log_prob: Tensor, seqs: Tensor, attns
    ):
        """Merge in the candidates (live, cands) of the sentences ``sentence`` (live,) where
        ``finishing`` is True, each ``steps`` tokens long; seqs (live, cands, max_steps),
        attns (live, cands, steps, src_len) or None."""
        n, max_steps = self.seqs.shape[1:]
        within = torch.arange(sentence.numel(), device=sentence.device)[:, None]  # (live, 1)
        merged = torch.cat([self.score[sentence], score.masked_fill(~finishing, NEG_INF)], dim=1).topk(n, dim=1)
        pick = merged.indices  # (live, n), into the kept ones followed by the candidates
        self.score[sentence] = merged.values
        self.log_prob[sentence] = torch.cat([self.log_prob[sentence], log_prob], dim=1).gather(1, pick)
        lengths = torch.full_like(finishing, steps, dtype=torch.long)
        self.steps[sentence] = torch.cat([self.steps[sentence], lengths], dim=1).gather(1, pick)
        self.seqs[sentence] = torch.cat([self.seqs[sentence], seqs], dim=1)[within, pick]
        if attns is not None:
            if self.attns is None:
                self.attns = attns.new_zeros(self.score.size(0), n, max_steps, attns.size(-1))
            attns = F.pad(attns, (0, 0, 0, max_steps - attns.size(2)))  # (live, cands, max_steps, src_len)
            self.attns[sentence] = torch.cat([self.attns[sentence], attns], dim=1)[within, pick]


def _sync_interval(sync_every: int | None, device: torch.device) -> int:
    """Steps between the host's looks at which sentences are done (to drop them, or stop).

    Each look waits for the device to finish the step, which costs nothing on a CPU but stalls
    a GPU's queue of kernels, so by default a CPU looks every step and a GPU every 8. Between looks
    a done sentence stays in the batch, adding nothing; ``sync_every`` changes no output."""
    if sync_every is not None:
        if sync_every < 1:
            raise ValueError(f"sync_every must be at least 1, not {sync_every}")
        return sync_every
    return 1 if device.type == "cpu" else 8


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
