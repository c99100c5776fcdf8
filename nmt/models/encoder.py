"""The RNN encoder: embeddings + a (bi)directional LSTM/GRU/RNN over the packed source."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.models.dropout import Dropout
from nmt.models.interface import Encoded
from nmt.models.rnn import make_rnn, run_rnn
from nmt.specials import PAD


class RNNEncoder(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        *,
        emb_size: int,
        hidden: int,
        cell: str = "lstm",
        layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        impl: str = "torch",
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb_size, padding_idx=PAD)
        self.dropout = Dropout(dropout)
        self.rnn = make_rnn(cell, impl, emb_size, hidden, layers=layers, bidirectional=bidirectional, dropout=dropout)
        self.layers = layers
        self.directions = 2 if bidirectional else 1
        self.n_states = 2 if cell == "lstm" else 1  # an LSTM hands over both h and c
        self.output_size = self.directions * hidden  # what the bridge and attention are built from

    def forward(self, src: Tensor, src_len: Tensor) -> Encoded:
        x = self.dropout(self.embed(src))  # (batch, src_len, emb)
        outputs, final = run_rnn(self.rnn, x, src_len)  # outputs (batch, src_len, directions*hidden)
        states = final if isinstance(final, tuple) else (final,)
        return Encoded(
            outputs=outputs,
            mask=src != PAD,  # (batch, src_len); from the lengths, it would wait for their copy to the GPU
            final=torch.stack(
                [self._per_layer(s) for s in states], dim=2
            ),  # (batch, layers, n_states, directions*hidden)
        )

    def _per_layer(self, state: Tensor) -> Tensor:
        """(layers*directions, batch, hidden) -> (batch, layers, directions*hidden): the forward
        and backward final states of each layer side by side."""
        layers_dirs, batch, hidden = state.shape
        state = state.view(self.layers, self.directions, batch, hidden)
        return state.permute(2, 0, 1, 3).reshape(batch, self.layers, self.directions * hidden)
