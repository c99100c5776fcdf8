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
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.models.attention import BahdanauAttention
from nmt.models.cells import CELLS
from nmt.models.dropout import Dropout, dropout
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
        self.dropout = Dropout(dropout)
        self.attention = BahdanauAttention(query_size=hidden, key_size=enc_size, hidden=hidden) if attention else None
        rnn_input = emb_size + (enc_size if attention else 0)
        self.rnn = make_rnn(cell, impl, rnn_input, hidden, layers=layers, dropout=dropout)
        self.cell = CELLS[cell]  # its equations, for the teacher-forced recurrence (_teacher_forced)
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
        forced = teacher_forcing >= 1.0
        if forced and self.attention is None:  # nothing depends on the previous step's output: one fused call
            out, _ = run_rnn(self.rnn, emb, None, _torch_hx(state.hidden))
            return self.logits(out)
        if forced and hasattr(self.rnn, "weight_hh_l0"):  # not int8 layers, whose weights are packed away
            # Only the recurrence needs the loop: what reads its outputs runs once over all positions,
            # the vocabulary matmul (the biggest cost) above all.
            return self.logits(self._features(*self._teacher_forced(emb, state, encoded)))
        logits, prev_emb = [], emb[:, 0]
        for t in range(trg_in.size(1)):
            f, state, _ = self._advance(prev_emb, state, encoded)
            logits.append(self.logits(f))  # (batch, vocab)
            if t + 1 < trg_in.size(1):
                prev_emb = emb[:, t + 1] if forced else self._sampled_or(emb[:, t + 1], logits[-1], teacher_forcing)
        return torch.stack(logits, dim=1)

    def _sampled_or(self, reference: Tensor, logits: Tensor, teacher_forcing: float) -> Tensor:
        """Scheduled sampling's next input: per sentence, the reference's embedding (batch, emb)
        with probability ``teacher_forcing``, else that of a token sampled from ``logits``."""
        sampled = _sample_output(logits.detach())  # (batch,) a position among the outputs scored
        if self.output_rows is not None:
            sampled = self.output_rows[sampled]
        predicted = self.dropout(self.embed(sampled))  # (batch, emb)
        keep = torch.rand(reference.size(0), 1, device=reference.device) < teacher_forcing  # (batch, 1)
        return torch.where(keep, reference, predicted)

    def _teacher_forced(self, emb: Tensor, state: RNNState, encoded: Encoded) -> tuple[Tensor, Tensor]:
        """The recurrence of ``_recur`` over every position of emb (batch, trg_len, emb), written out
        with the cell's equations -> the RNN's outputs (batch, trg_len, hidden) and the contexts
        (batch, trg_len, enc_size).

        Only what waits on the step before is computed step by step. The first layer's gates read
        [token; context]: every target token is known before the batch starts, so the tokens' share
        of the gates is one matrix product over all positions; and a context is an average of the
        encoder outputs weighted by the attention, so its share W c_t = sum_s a_ts (W h_s) is an
        average of the outputs' shares, computed once per source position. A training step runs
        faster on a CPU than calling the fused RNN once per position (docs/experiments.rst, "Speed").
        Search keeps calling the RNN module, which int8 quantization replaces."""
        weights = [
            [getattr(self.rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            for layer in range(self.rnn.num_layers)
        ]
        w_ih, w_hh, b_ih, b_hh = weights[0]
        w_emb, w_context = w_ih.split([emb.size(2), encoded.outputs.size(2)], dim=1)
        emb_gates = F.linear(emb, w_emb, b_ih)  # (batch, trg_len, gates*hidden)
        context_gates = F.linear(encoded.outputs, w_context)  # (batch, src_len, gates*hidden)
        # One state per layer, as the cell takes it: (h, c) for an LSTM, h otherwise; in fp32 even
        # under autocast, where the matrix products run in bf16 or fp16 (on a CPU, run_rnn keeps
        # the fused RNN's state in fp32 too).
        states = [
            tuple(x.float() for x in s) if len(s) == 2 else s[0].float()
            for s in zip(*(kind.unbind(0) for kind in state.hidden))
        ]
        outs, attentions = [], []
        for emb_gates_t in emb_gates.unbind(1):  # unbind: emb_gates[:, t] would cost a zero-filled copy in backward
            attention = self.attention.weights(_h(states[-1]), encoded.keys, encoded.mask)  # (batch, src_len)
            x_gates = torch.baddbmm(emb_gates_t[:, None], attention[:, None], context_gates)  # (batch, 1, gates*hidden)
            x_gates = x_gates.squeeze(1).float()
            states[0] = self.cell.step_from_gates(x_gates, states[0], w_hh, b_hh)
            for layer in range(1, len(states)):
                below = dropout(_h(states[layer - 1]), self.rnn.dropout, self.training)
                states[layer] = self.cell.step(below, states[layer], *weights[layer])
            outs.append(_h(states[-1]))  # (batch, hidden)
            attentions.append(attention)
        # The loop needed only the contexts' share of the gates; the contexts themselves are one product.
        contexts = torch.bmm(torch.stack(attentions, dim=1), encoded.outputs)  # (batch, trg_len, enc_size)
        return torch.stack(outs, dim=1), contexts

    @staticmethod
    def reorder(state: RNNState, index: Tensor) -> RNNState:
        return RNNState(tuple(s.index_select(1, index) for s in state.hidden))


def _sample_output(logits: Tensor) -> Tensor:
    """(batch, vocab) -> (batch,) a token drawn from each row's softmax, PAD and SOS excluded."""
    logits = logits.float().clone()
    logits[:, [PAD, SOS]] = float("-inf")
    return torch.multinomial(logits.softmax(dim=-1), 1).squeeze(1)


def _h(state: Tensor | tuple[Tensor, Tensor]) -> Tensor:
    """A cell's state -> its hidden state h: the first of an LSTM's (h, c), the state itself otherwise."""
    return state[0] if isinstance(state, tuple) else state


def _torch_hx(hidden: tuple[Tensor, ...]):
    return hidden if len(hidden) == 2 else hidden[0]


def _as_tuple(hidden) -> tuple[Tensor, ...]:
    return tuple(hidden) if isinstance(hidden, tuple) else (hidden,)
