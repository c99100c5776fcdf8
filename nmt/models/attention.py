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
        """query (batch, query_size), keys (batch, src_len, hidden) from project_keys,
        values (batch, src_len, key_size), mask (batch, src_len) True at real tokens
        -> context (batch, key_size), weights (batch, src_len)"""
        weights = self.weights(query, keys, mask)
        context = torch.bmm(weights[:, None, :], values).squeeze(1)  # (batch, key_size)
        return context, weights

    def weights(self, query: Tensor, keys: Tensor, mask: Tensor) -> Tensor:
        """The attention alone, (batch, src_len): training gathers the contexts of all positions
        in one product afterwards (RNNDecoder._teacher_forced)."""
        scores = self.energy(torch.tanh(self.query_proj(query)[:, None, :] + keys)).squeeze(2)  # (batch, src_len)
        return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)  # padding gets exactly 0
