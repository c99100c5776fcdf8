"""Bahdanau (additive) attention: score(q, k) = v . tanh(W_q q + W_k k)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BahdanauAttention(nn.Module):
    def __init__(self, *, query_size: int, key_size: int, hidden: int):
        super().__init__()
        self.key_proj = nn.Linear(key_size, hidden, bias=False)
        self.query_proj = nn.Linear(query_size, hidden, bias=False)
        self.energy = nn.Linear(hidden, 1, bias=False)

    def project_keys(self, values: Tensor) -> Tensor:
        """W_k k does not depend on the decoder, so it is computed once per sentence, not per step.
        values (batch, src_len, key_size) -> (batch, src_len, hidden)"""
        return self.key_proj(values)

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query (rows, query_size), keys (batch, src_len, hidden) from project_keys,
        values (batch, src_len, key_size), mask (batch, src_len) True at real tokens
        -> context (rows, key_size), weights (rows, src_len).

        rows is a multiple of batch: ``rows // batch`` consecutive queries read each source (the
        hypotheses of one sentence in beam search), which is then not copied once per query.
        """
        weights = self.weights(query, keys, mask)  # (rows, src_len)
        per_source = weights.view(keys.size(0), -1, keys.size(1))  # (batch, rows // batch, src_len)
        context = torch.bmm(per_source, values).flatten(0, 1)  # (rows, key_size)
        return context, weights

    def weights(self, query: Tensor, keys: Tensor, mask: Tensor) -> Tensor:
        """The attention alone, (rows, src_len), queries (rows, query_size) grouped as in
        ``forward``: training gathers the contexts of all positions in one product afterwards
        (RNNDecoder._teacher_forced)."""
        batch, src_len, hidden = keys.shape
        query = self.query_proj(query).view(batch, -1, 1, hidden)  # (batch, rows // batch, 1, hidden)
        scores = self.energy(torch.tanh(query + keys[:, None])).squeeze(-1)  # (batch, rows // batch, src_len)
        weights = torch.softmax(scores.masked_fill(~mask[:, None], float("-inf")), dim=-1)  # padding gets exactly 0
        return weights.view(-1, src_len)
