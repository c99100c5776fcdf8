"""The small interface every model offers, so one search and one learner drive them all.

    encoded = model.encode(src, src_len)               # read the source once
    state = model.init_state(encoded)                  # decoder state before the first token
    logits, state, attn = model.step(prev, state, encoded)  # one target position for every row
    state = model.reorder(state, index)                # rows follow the hypotheses beam search keeps
    logits = model(src, src_len, trg_in)               # teacher-forced: every position at once

Greedy and beam search (nmt/search.py) use only encode / init_state / step / reorder; the
learner uses only forward. Tensors are batch-first everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

from torch import Tensor


@dataclass
class Encoded:
    """What the encoder hands the decoder. Every tensor has the batch on its first dimension."""

    outputs: Tensor  # (batch, src_len, enc_out)
    mask: Tensor  # (batch, src_len), True at real tokens, False at padding
    final: Tensor | None = None  # RNN: (batch, layers, n_states, state_size); None for the Transformer
    # what the decoder's attention reads of the source, projected once per sentence: the RNN's
    # keys (batch, src_len, key_size); the Transformer's cross-attention keys and values of
    # every decoder layer (batch, dec_layers, 2, heads, src_len, d_head)
    keys: Tensor | None = None

    def index_select(self, index: Tensor) -> Encoded:
        """Rows picked by ``index``: the search drops the rows of sentences that are done, and
        sampling gives each of a sentence's samples a copy (beam search's hypotheses of a sentence
        share one, as ``Seq2SeqModel.step`` allows)."""
        picked = {
            f.name: None if getattr(self, f.name) is None else getattr(self, f.name).index_select(0, index)
            for f in fields(self)
        }
        return Encoded(**picked)


class Seq2SeqModel(Protocol):
    trg_vocab_size: int

    def encode(self, src: Tensor, src_len: Tensor) -> Encoded:
        """src (batch, src_len) token ids, src_len (batch,) lengths."""

    def init_state(self, encoded: Encoded):
        """Decoder state for the first step, one row per source sentence."""

    def step(
        self, prev: Tensor, state, encoded: Encoded, *, need_attention: bool = False
    ) -> tuple[Tensor, object, Tensor | None]:
        """prev (batch,) previous tokens -> logits (batch, vocab), next state, and the
        attention over the source (batch, src_len), or None for a model without attention.
        ``encoded`` may hold fewer rows, a divisor of batch: then ``batch // rows`` consecutive
        rows read each of its sources (beam search's hypotheses of one sentence), and it is not
        copied for each of them.
        A model whose attention costs extra to report may give None unless ``need_attention``.
        The state passed in may be updated in place: a state is stepped once."""

    def reorder(self, state, index: Tensor):
        """The state whose row i is row ``index[i]`` of ``state``."""

    def forward(self, src: Tensor, src_len: Tensor, trg_in: Tensor, teacher_forcing: float = 1.0) -> Tensor:
        """Teacher forcing: trg_in (batch, trg_len) -> logits (batch, trg_len, vocab); below 1.0,
        the model reads its own predictions that often instead (models that cannot, refuse)."""
