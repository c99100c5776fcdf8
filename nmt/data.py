"""Token-id examples -> length-bucketed, padded batches.

Batches are built from sentences of similar length so that little of each batch is padding,
then shuffled. Training batches are re-bucketed every epoch from ``seed + epoch``, so the
batches of any epoch can be rebuilt exactly, which is what makes an interrupted run
resumable; validation batches (``fixed_batches``) are made once, in length order.

A training batch is a *global* batch: one update, whatever computes it. Several processes
(torchrun) and gradient accumulation each split it into pieces of near-equal target tokens
(``Share``); a process computes its pieces one after the other (``Update``). So the batches,
and the updates, depend on the seed alone, never on how many processes share the work.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from nmt.specials import EOS, PAD, SOS

log = logging.getLogger(__name__)

Example = tuple[list[int], list[int]]  # (source ids, target ids), no SOS / EOS


@dataclass
class Batch:
    src: Tensor  # (batch, src_len) source ids, PAD-padded
    src_len: Tensor  # (batch,) real source lengths, on the CPU as pack_padded_sequence wants
    trg_in: Tensor  # (batch, trg_len) SOS + target: what the decoder reads
    trg_out: Tensor  # (batch, trg_len) target + EOS: what it must predict
    n_tokens: int  # real (non-PAD) tokens in trg_out: the loss is averaged over these

    @property
    def src_mask(self) -> Tensor:
        return self.src != PAD  # (batch, src_len)

    @property
    def trg_mask(self) -> Tensor:
        return self.trg_out != PAD  # (batch, trg_len)

    def __len__(self) -> int:
        return self.src.size(0)

    def rows(self, n: int) -> Batch:
        """The first ``n`` sentences, padding as it is."""
        return Batch(
            src=self.src[:n],
            src_len=self.src_len[:n],
            trg_in=self.trg_in[:n],
            trg_out=self.trg_out[:n],
            n_tokens=int((self.trg_out[:n] != PAD).sum()),
        )

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            src=_moved(self.src, device),
            src_len=self.src_len,
            trg_in=_moved(self.trg_in, device),
            trg_out=_moved(self.trg_out, device),
            n_tokens=self.n_tokens,
        )


def _moved(tensor: Tensor, device: torch.device | str) -> Tensor:
    """To a GPU from pinned memory, without waiting: a copy from pageable memory would first wait
    for the GPU to finish its queue."""
    if torch.device(device).type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def make_batch(examples: Sequence[Example]) -> Batch:
    """Pad a list of examples into one Batch (SOS/EOS added here, once)."""
    src_len = torch.tensor([len(s) for s, _ in examples])
    trg_len = torch.tensor([len(t) + 1 for _, t in examples])
    return Batch(
        src=_padded([s for s, _ in examples], src_len),
        src_len=src_len,
        trg_in=_padded([[SOS, *t] for _, t in examples], trg_len),
        trg_out=_padded([[*t, EOS] for _, t in examples], trg_len),
        n_tokens=int(trg_len.sum()),
    )


def _padded(rows: list[list[int]], lengths: Tensor) -> Tensor:
    """(len(rows), longest) ids, PAD after each row's end, filled from one flat array: a tensor
    per row took 35 ms for a batch of 16,000 tokens (this 2-core CPU), several times the
    arithmetic of a GPU's training step on it, and ``torch.tensor`` of a Python list is itself
    8x slower than numpy's fromiter."""
    ids = itertools.chain.from_iterable(rows)
    flat = torch.from_numpy(np.fromiter(ids, dtype=np.int64, count=int(lengths.sum())))
    padded = torch.full((len(rows), int(lengths.max())), PAD, dtype=torch.long)
    padded[torch.arange(padded.size(1)) < lengths[:, None]] = flat  # fills row by row
    return padded


def padded_size(examples: Sequence[Example]) -> int:
    """Tokens a batch of these examples occupies: rows x the longer of its two padded sides."""
    longest = max(max(len(s), len(t) + 1) for s, t in examples)
    return len(examples) * longest


def bucket(
    examples: Sequence[Example],
    *,
    batch_tokens: int = 0,
    batch_size: int = 64,
    shuffle: bool = True,
    seed: int = 0,
) -> list[list[int]]:
    """Group example indices into batches of similar length.

    With ``batch_tokens`` > 0 a batch grows while rows x longest side stays within the budget
    (so short sentences come in big batches and long ones in small); otherwise it holds
    ``batch_size`` sentences. Sorting by (source, target) length is what keeps padding low;
    shuffling before the (stable) sort breaks ties differently every epoch, and shuffling the
    batches afterwards keeps lengths from arriving in order.
    """
    rng = random.Random(seed)
    order = list(range(len(examples)))
    if shuffle:
        rng.shuffle(order)
    order.sort(key=lambda i: (len(examples[i][0]), len(examples[i][1])))

    batches, current, longest = [], [], 0
    for i in order:
        src, trg = examples[i]
        new_longest = max(longest, len(src), len(trg) + 1)
        full = (len(current) + 1) * new_longest > batch_tokens if batch_tokens > 0 else len(current) == batch_size
        if current and full:
            batches.append(current)
            current, new_longest = [], max(len(src), len(trg) + 1)
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    if shuffle:
        rng.shuffle(batches)
    return batches


def split_by_tokens(indices: Sequence[int], examples: Sequence[Example], parts: int) -> list[list[int]]:
    """``indices`` cut into ``parts`` consecutive runs of near-equal target tokens (the loss
    counts them; a bucketed batch's sentences are of similar length, so padding stays low in
    every run). No run is empty unless there are fewer sentences than runs."""
    sizes = [len(examples[i][1]) + 1 for i in indices]
    before = [0, *itertools.accumulate(sizes)]  # target tokens ahead of each sentence
    n, cuts = len(indices), [0]
    for part in range(1, parts):
        target = before[-1] * part / parts
        start = cuts[-1]
        # the run ends at the first sentence that lies mostly past its share of the tokens
        end = next((j for j in range(start, n) if before[j] + sizes[j] / 2 > target), n)
        # one sentence at least per run while any are left, and one left for each run still to come
        least = min(start + 1, n)
        cuts.append(min(max(end, least), max(n - (parts - part), least)))
    cuts.append(n)
    return [list(indices[a:b]) for a, b in zip(cuts, cuts[1:])]


@dataclass(frozen=True)
class Share:
    """Which pieces of every global batch this process computes: the batch is cut into
    ``processes x accum_steps`` pieces and this process takes ``accum_steps`` of them, in turn."""

    rank: int = 0
    processes: int = 1
    accum_steps: int = 1

    @property
    def pieces(self) -> int:
        return self.processes * self.accum_steps

    def mine(self, pieces: list[list[int]]) -> list[list[int]]:
        return pieces[self.rank * self.accum_steps : (self.rank + 1) * self.accum_steps]


@dataclass
class Update:
    """This process's part of one global batch: its pieces, each with its weight, the share of
    the global batch's target tokens it holds. A piece of weight 0 stands in where the batch had
    fewer sentences than pieces: it keeps every process in step and counts for nothing."""

    pieces: list[Batch]
    weights: list[float]
    n_tokens: int  # real target tokens of the whole global batch, all processes together
    n_sentences: int  # ... and its sentences

    def __len__(self) -> int:
        return self.n_sentences

    def to(self, device: torch.device | str) -> Update:
        return Update([p.to(device) for p in self.pieces], self.weights, self.n_tokens, self.n_sentences)


def share_of(indices: Sequence[int], examples: Sequence[Example], share: Share) -> Update:
    """The ``Update`` that ``share`` computes of the global batch made of ``indices``."""
    pieces = share.mine(split_by_tokens(indices, examples, share.pieces))
    n_tokens = sum(len(examples[i][1]) + 1 for i in indices)
    batches, weights = [], []
    for piece in pieces:
        if piece:
            batch = make_batch([examples[i] for i in piece])
            batches.append(batch)
            weights.append(batch.n_tokens / n_tokens)
        else:
            batches.append(make_batch([examples[indices[0]]]))
            weights.append(0.0)
    return Update(batches, weights, n_tokens, len(indices))


class BatchedData:
    """The training examples, re-bucketed for every epoch from ``seed + epoch``. The latest
    epoch's batches are kept, so counting them (the progress bar) costs no second bucketing.

    With ``resample`` (subword sampling), each epoch trains on ``resample(epoch)``, a new
    segmentation of the same pairs that depends on the epoch alone; ``examples`` stays the
    fixed one."""

    def __init__(
        self,
        examples: Sequence[Example],
        *,
        batch_tokens: int,
        batch_size: int,
        seed: int,
        resample: Callable[[int], Sequence[Example]] | None = None,
    ):
        if not examples:
            raise ValueError("no training examples: the corpus is empty after filtering")
        self.examples = examples
        self.batch_tokens = batch_tokens
        self.batch_size = batch_size
        self.seed = seed
        self.resample = resample
        self._epoch: tuple[int, Sequence[Example], list[list[int]]] | None = None

    def epoch_examples(self, epoch: int) -> Sequence[Example]:
        """The examples ``epoch`` trains on."""
        return self._cached(epoch)[1]

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The example indices of every batch of ``epoch``, in training order."""
        return self._cached(epoch)[2]

    def _cached(self, epoch: int):
        if self._epoch is None or self._epoch[0] != epoch:
            examples = self.resample(epoch) if self.resample else self.examples
            batches = bucket(
                examples,
                batch_tokens=self.batch_tokens,
                batch_size=self.batch_size,
                shuffle=True,
                seed=self.seed + epoch,
            )
            self._epoch = (epoch, examples, batches)
        return self._epoch

    def batches(self, epoch: int, *, start: int = 0, share: Share = Share()):
        """The updates of ``epoch`` from position ``start`` on (a resumed run skips what it did),
        each as ``share`` computes it."""
        examples = self.epoch_examples(epoch)
        for indices in self.epoch_batches(epoch)[start:]:
            yield share_of(indices, examples, share)


def fixed_batches(examples: Sequence[Example], *, batch_tokens: int, batch_size: int) -> list[Batch]:
    """Batches made once, in length order, for a pass that needs no shuffling (validation loss)."""
    return [
        make_batch([examples[i] for i in b])
        for b in bucket(examples, batch_tokens=batch_tokens, batch_size=batch_size, shuffle=False)
    ]


def encode_pairs(
    pairs: Sequence[tuple[str, str]],
    src_tok,
    trg_tok,
    *,
    max_len: int = 0,
    encode: Callable[[object, str], list[int]] = lambda tok, text: tok.encode(text),
) -> list[Example]:
    """Text pairs -> id pairs; with ``max_len`` > 0, pairs longer in tokens on either side are
    left out and counted in the log (the corpus's word-count filter cannot see subwords).
    ``encode(tokenizer, text)`` segments a sentence (subword sampling passes its own)."""
    examples = [(encode(src_tok, s), encode(trg_tok, t)) for s, t in pairs]
    if max_len > 0:
        kept = [(s, t) for s, t in examples if 0 < len(s) <= max_len and len(t) <= max_len]
        if len(kept) < len(examples):
            log.info(
                "left out %d of %d training pairs longer than %d tokens",
                len(examples) - len(kept),
                len(examples),
                max_len,
            )
        examples = kept
    return examples


def padding_waste(batches: Sequence[Sequence[int]], examples: Sequence[Example]) -> float:
    """Padded tokens / all tokens over both sides of every batch."""
    padded = real = 0
    for indices in batches:
        rows = [examples[i] for i in indices]
        real += sum(len(s) + len(t) + 1 for s, t in rows)
        padded += len(rows) * (max(len(s) for s, _ in rows) + max(len(t) + 1 for _, t in rows))
    return 1 - real / padded
