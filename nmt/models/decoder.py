"""The RNN decoder: one-token ``step`` for search, teacher-forced ``forward`` for training.

With Bahdanau attention each step looks at the source with the previous hidden state, feeds
that step's context vector to the RNN beside the embedded previous token (as in Bahdanau et al.,
2015; not Luong et al.'s "input feeding", which feeds back the previous step's attentional
vector), and predicts from the new hidden state and the context together. Without attention
the decoder sees the source only through its initial state, the bridged encoder final state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nmt.models.attention import BahdanauAttention
from nmt.models.interface import Encoded
from nmt.models.rnn import make_rnn, run_rnn
from nmt.models.shortlist import cut_rows, listed_logits
from nmt.specials import PAD, SOS


@dataclass
class RNNState:
    hidden: tuple[Tensor, ...]  # each (layers, batch, dec_hidden): (h, c) for an LSTM, (h,) otherwise


class RNNDecoder(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        *,
        emb_size: int,
        hidden: int,
        enc_size: int,
        cell: str = "lstm",
        layers: int = 1,
        dropout: float = 0.0,
        attention: bool = True,
        impl: str = "torch",
        tie_embeddings: bool = False,
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb_size, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.attention = BahdanauAttention(query_size=hidden, key_size=enc_size, hidden=hidden) if attention else None
        rnn_input = emb_size + (enc_size if attention else 0)
        self.rnn = make_rnn(cell, impl, rnn_input, hidden, layers=layers, dropout=dropout)
        # With attention, the prediction sees the context too: tanh(W [h_t; c_t]) as in Luong et al.
        self.combine = nn.Linear(hidden + enc_size, hidden) if attention else None
        # Tied, the output layer is the embedding matrix read backwards (Press & Wolf, 2017): one
        # matrix of vocab x emb fewer to learn, and every update to a word's output row moves its
        # input row too. Features are projected to the embedding size first when the sizes differ.
        tied_projection = tie_embeddings and hidden != emb_size
        self.to_embedding = nn.Linear(hidden, emb_size) if tied_projection else None
        self.out_proj = nn.Linear(emb_size if tie_embeddings else hidden, vocab_size)
        if tie_embeddings:
            # nn.Embedding's N(0, 1) would give logits of std ~sqrt(emb_size) from the start
            nn.init.normal_(self.embed.weight, std=emb_size**-0.5)
            self.out_proj.weight = self.embed.weight
        # the output rows logits are restricted to while training (list_outputs); not in the state dict
        self.register_buffer("output_rows", None, persistent=False)

    def keep_outputs(self, ids: Tensor) -> None:
        """Cut the output layer to the rows ``ids`` (nmt.models.shortlist)."""
        self.out_proj = cut_rows(self.out_proj, ids)

    def list_outputs(self, ids: Tensor) -> None:
        """Score only the rows ``ids`` of the output layer from now on, read from the whole layer
        (nmt.models.shortlist): logits are over positions in ``ids``."""
        self.output_rows = ids

    def init_state(self, bridged: Tensor) -> RNNState:
        """bridged (batch, layers, n_states, hidden) -> torch's layout, one (layers, batch, hidden) per kind"""
        return RNNState(hidden=tuple(s.contiguous() for s in bridged.permute(2, 1, 0, 3).unbind(0)))

    def step(self, prev: Tensor, state: RNNState, encoded: Encoded) -> tuple[Tensor, RNNState, Tensor | None]:
        """prev (batch,) -> logits (batch, vocab), next state, attention (batch, src_len) or None"""
        features, state, weights = self._advance(self.dropout(self.embed(prev)), state, encoded)
        return self.logits(features), state, weights

    def logits(self, features: Tensor) -> Tensor:
        """features (..., hidden) -> (..., vocab)"""
        features = self.dropout(features)
        features = features if self.to_embedding is None else self.to_embedding(features)
        return listed_logits(self.out_proj, features, self.output_rows)

    def _advance(self, emb: Tensor, state: RNNState, encoded: Encoded) -> tuple[Tensor, RNNState, Tensor | None]:
        """One position: emb (batch, emb) -> features (batch, hidden) the output layer reads."""
        out, context, state, weights = self._recur(emb, state, encoded)
        return self._features(out, context), state, weights

    def _recur(
        self, emb: Tensor, state: RNNState, encoded: Encoded
    ) -> tuple[Tensor, Tensor | None, RNNState, Tensor | None]:
        """The recurrent part of a position: emb (batch, emb) -> the RNN's output (batch, hidden),
        the context (batch, enc_size) or None without attention, the next state, the attention."""
        if self.attention is None:
            out, hidden = run_rnn(self.rnn, emb[:, None, :], None, _torch_hx(state.hidden))
            return out[:, 0], None, RNNState(_as_tuple(hidden)), None
        query = state.hidden[0][-1]  # (batch, hidden): the top layer's previous h
        context, weights = self.attention(query, encoded.keys, encoded.outputs, encoded.mask)  # (batch, enc_size)
        rnn_in = torch.cat([emb, context], dim=1)[:, None, :]  # (batch, 1, emb + enc_size)
        out, hidden = run_rnn(self.rnn, rnn_in, None, _torch_hx(state.hidden))
        return out[:, 0], context, RNNState(_as_tuple(hidden)), weights

    def _features(self, out: Tensor, context: Tensor | None) -> Tensor:
        """out (..., hidden) and context (..., enc_size) -> (..., hidden): tanh(W [h; c]) with attention."""
        if context is None:
            return out
        return torch.tanh(self.combine(torch.cat([out, context], dim=-1)))

    def forward(self, trg_in: Tensor, state: RNNState, encoded: Encoded, teacher_forcing: float = 1.0) -> Tensor:
        """trg_in (batch, trg_len) -> logits (batch, trg_len, vocab).

        With ``teacher_forcing`` < 1 this is scheduled sampling (Bengio et al., 2015): at every
        position each sentence flips its own coin, and with probability 1 - teacher_forcing reads a
        token sampled from its own prediction instead of the reference. PAD and SOS are never
        sampled: no search ever outputs them."""
        emb = self.dropout(self.embed(trg_in))  # (batch, trg_len, emb)
        if teacher_forcing >= 1.0:
            if self.attention is None:  # nothing depends on the previous step's output: one fused call
                out, _ = run_rnn(self.rnn, emb, None, _torch_hx(state.hidden))
                return self.logits(out)
            outs, contexts = [], []
            for emb_t in emb.unbind(1):  # unbind: indexing emb[:, t] would cost a zero-filled copy of emb in backward
                out, context, state, _ = self._recur(emb_t, state, encoded)
                outs.append(out)
                contexts.append(context)
            # Only the recurrence needs the loop: what reads its outputs runs once over all positions,
            # the vocabulary matmul (the biggest cost) above all.
            return self.logits(self._features(torch.stack(outs, dim=1), torch.stack(contexts, dim=1)))
        logits, prev_emb = [], emb[:, 0]
        for t in range(trg_in.size(1)):
            f, state, _ = self._advance(prev_emb, state, encoded)
            logits.append(self.logits(f))  # (batch, vocab)
            if t + 1 < trg_in.size(1):
                sampled = _sample_output(logits[-1].detach())  # (batch,) a position among the outputs scored
                if self.output_rows is not None:
                    sampled = self.output_rows[sampled]
                predicted = self.dropout(self.embed(sampled))  # (batch, emb)
                reference = torch.rand(trg_in.size(0), 1, device=trg_in.device) < teacher_forcing  # (batch, 1)
                prev_emb = torch.where(reference, emb[:, t + 1], predicted)
        return torch.stack(logits, dim=1)

    @staticmethod
    def reorder(state: RNNState, index: Tensor) -> RNNState:
        return RNNState(tuple(s.index_select(1, index) for s in state.hidden))


def _sample_output(logits: Tensor) -> Tensor:
    """(batch, vocab) -> (batch,) a token drawn from each row's softmax, PAD and SOS excluded."""
    logits = logits.float().clone()
    logits[:, [PAD, SOS]] = float("-inf")
    return torch.multinomial(logits.softmax(dim=-1), 1).squeeze(1)


def _torch_hx(hidden: tuple[Tensor, ...]):
    return hidden if len(hidden) == 2 else hidden[0]


def _as_tuple(hidden) -> tuple[Tensor, ...]:
    return tuple(hidden) if isinstance(hidden, tuple) else (hidden,)
