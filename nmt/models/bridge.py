"""The bridge: the encoder's final states -> the decoder's initial states.

A bidirectional encoder ends with a forward and a backward state per layer, side by side
(2 x enc_hidden); the decoder may have another size. ``linear`` learns a map (Linear + tanh,
one per state kind: h, and for an LSTM c too) for every layer; ``identity`` passes the states
through when the sizes already fit; ``zero`` starts the decoder from zeros, as a baseline.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Bridge(nn.Module):
    """``kind`` is checked by ModelConfig (identity only where the sizes already agree)."""

    def __init__(self, kind: str, *, enc_size: int, dec_hidden: int, n_states: int):
        super().__init__()
        self.kind = kind
        self.dec_hidden = dec_hidden
        self.maps = (
            nn.ModuleList(nn.Linear(enc_size, dec_hidden) for _ in range(n_states)) if kind == "linear" else None
        )

    def forward(self, final: Tensor) -> Tensor:
        """final (batch, layers, n_states, enc_size) -> (batch, layers, n_states, dec_hidden)"""
        if self.kind == "identity":
            return final
        if self.kind == "zero":
            return final.new_zeros(*final.shape[:3], self.dec_hidden)
        return torch.stack([torch.tanh(m(final[:, :, k])) for k, m in enumerate(self.maps)], dim=2)
