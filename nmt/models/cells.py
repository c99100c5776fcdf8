"""LSTM, GRU and vanilla RNN written out gate by gate, as drop-in twins of torch's modules.

The toolkit runs torch's fused ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` by default; ``--rnn-impl
scratch`` swaps in these, which exist to be read. They copy torch's conventions exactly, so a
state_dict moves between the two in either direction and tests/test_cells.py can check outputs
and gradients against torch:

- parameter names and shapes: a cell has ``weight_ih`` (gates*hidden, input), ``weight_hh``
  (gates*hidden, hidden), ``bias_ih`` and ``bias_hh`` (gates*hidden,); ``ScratchRNN`` names
  them per layer and direction like torch: ``weight_ih_l0``, ``weight_hh_l1_reverse``, ...
- the gates are stacked in the rows of those matrices in torch's order: LSTM i, f, g, o;
  GRU r, z, n.
- two biases per gate, one on each side. They add up everywhere except in the GRU's candidate,
  where the reset gate multiplies ``(W_hn h + b_hn)`` and so ``b_hn`` cannot be folded in.
- initialisation: every weight and bias uniform(-1/sqrt(hidden), 1/sqrt(hidden)).

Each cell's ``step`` is a plain function of the input, the state and the four tensors, so
``ScratchRNN`` runs the very same equations with its own per-layer parameters. ``step`` is
``step_from_gates`` given the input's share of the gates, ``W_ih x + b_ih``: that share does not
wait for the previous state, so ``ScratchRNN`` (like cuDNN) computes it for every position in
one matrix product and runs only the hidden side step by step, and the decoder does the same
with its known target tokens while it trains.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from nmt.models.dropout import dropout


class _Cell(nn.Module):
    """The four parameters every cell shares; subclasses set ``gates`` and write ``step``."""

    gates: int

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(self.gates * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(self.gates * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(self.gates * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(self.gates * hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class LSTMCell(_Cell):
    """``LSTMCell(x, (h, c)) -> (h, c)``; x (batch, input), h and c (batch, hidden)."""

    gates = 4

    @staticmethod
    def step(
        x: Tensor, state: tuple[Tensor, Tensor], weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor, bias_hh: Tensor
    ) -> tuple[Tensor, Tensor]:
        return LSTMCell.step_from_gates(F.linear(x, weight_ih, bias_ih), state, weight_hh, bias_hh)

    @staticmethod
    def step_from_gates(
        x_gates: Tensor, state: tuple[Tensor, Tensor], weight_hh: Tensor, bias_hh: Tensor
    ) -> tuple[Tensor, Tensor]:
        """x_gates (batch, 4*hidden): the input's share of the gates, W_ih x + b_ih."""
        h, c = state
        pre = x_gates + F.linear(h, weight_hh, bias_hh)  # (batch, 4*hidden)
        i, f, g, o = pre.chunk(4, dim=1)  # each (batch, hidden), in torch's row order
        i = torch.sigmoid(i)  # input gate:  i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)
        f = torch.sigmoid(f)  # forget gate: f = sigmoid(W_if x + b_if + W_hf h + b_hf)
        # tanh, not sigmoid: a candidate in (-1, 1) can lower the cell state as well as raise it.
        g = torch.tanh(g)  # candidate:   g = tanh(W_ig x + b_ig + W_hg h + b_hg)
        o = torch.sigmoid(o)  # output gate: o = sigmoid(W_io x + b_io + W_ho h + b_ho)
        c = f * c + i * g  # c' = f * c + i * g
        h = o * torch.tanh(c)  # h' = o * tanh(c')
        return h, c

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        if hx is None:
            zeros = x.new_zeros(x.size(0), self.hidden_size)  # (batch, hidden)
            hx = (zeros, zeros)
        return self.step(x, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class GRUCell(_Cell):
    """``GRUCell(x, h) -> h``; x (batch, input), h (batch, hidden)."""

    gates = 3

    @staticmethod
    def step(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor, bias_hh: Tensor) -> Tensor:
        return GRUCell.step_from_gates(F.linear(x, weight_ih, bias_ih), h, weight_hh, bias_hh)

    @staticmethod
    def step_from_gates(x_gates: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor) -> Tensor:
        """x_gates (batch, 3*hidden): the input's share of the gates, W_ih x + b_ih."""
        # The two sides stay apart because the reset gate scales only the hidden side of n.
        x_r, x_z, x_n = x_gates.chunk(3, dim=1)  # each (batch, hidden)
        h_r, h_z, h_n = F.linear(h, weight_hh, bias_hh).chunk(3, dim=1)  # each (batch, hidden)
        r = torch.sigmoid(x_r + h_r)  # reset gate:  r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
        z = torch.sigmoid(x_z + h_z)  # update gate: z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = torch.tanh(x_n + r * h_n)  # candidate:  n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        return (1 - z) * n + z * h  # h' = (1 - z) * n + z * h: z near 1 keeps the old state

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        if hx is None:
            hx = x.new_zeros(x.size(0), self.hidden_size)  # (batch, hidden)
        return self.step(x, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class RNNCell(_Cell):
    """Elman RNN with tanh, ``RNNCell(x, h) -> h``; x (batch, input), h (batch, hidden)."""

    gates = 1

    @staticmethod
    def step(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor, bias_hh: Tensor) -> Tensor:
        return RNNCell.step_from_gates(F.linear(x, weight_ih, bias_ih), h, weight_hh, bias_hh)

    @staticmethod
    def step_from_gates(x_gates: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor) -> Tensor:
        """x_gates (batch, hidden): the input's share, W_ih x + b_ih."""
        # h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
        return torch.tanh(x_gates + F.linear(h, weight_hh, bias_hh))

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        if hx is None:
            hx = x.new_zeros(x.size(0), self.hidden_size)  # (batch, hidden)
        return self.step(x, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


CELLS = {"lstm": LSTMCell, "gru": GRUCell, "rnn": RNNCell}


def reverse_within_length(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row's first ``lengths[b]`` positions and leave its padding where it is.

    x (batch, seq, features). Applying it twice gives x back, which is how the reverse
    direction's outputs are put back in reading order.
    """
    positions = torch.arange(x.size(1), device=x.device).expand(x.size(0), -1)  # (batch, seq)
    lengths = lengths[:, None]  # (batch, 1)
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)  # (batch, seq)
    return x.gather(1, index[:, :, None].expand_as(x))


class ScratchRNN(nn.Module):
    """Multi-layer, optionally bidirectional LSTM / GRU / RNN over padded batches.

    ``forward(x, lengths, hx=None) -> (outputs, h_n)``, or ``(outputs, (h_n, c_n))`` for the
    LSTM, gives what torch's ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` give on
    ``pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)`` followed by
    ``pad_packed_sequence(batch_first=True)``:

    - outputs (batch, max(lengths), num_directions*hidden); zero at padded positions, and as
      long as the longest sequence, not as long as x, as pad_packed_sequence returns it.
    - h_n (num_layers*num_directions, batch, hidden), row ``layer*num_directions + direction``:
      the forward direction's state at each sequence's last real token, the reverse
      direction's after reading from that token back to the first.

    Padding never touches the state: at a padded step the state is carried over unchanged.
    """

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        batch_first: bool = True,
    ):
        super().__init__()
        if mode not in CELLS:
            raise ValueError(f"mode must be one of {sorted(CELLS)}, got {mode!r}")
        self.mode = mode
        self.step_from_gates = CELLS[mode].step_from_gates  # the cell's equations, with this module's weights
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.dropout = dropout
        self.batch_first = batch_first
        gate_rows = CELLS[mode].gates * hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else self.num_directions * hidden_size
            for suffix in self._suffixes(layer):
                setattr(self, f"weight_ih{suffix}", nn.Parameter(torch.empty(gate_rows, layer_input)))
                setattr(self, f"weight_hh{suffix}", nn.Parameter(torch.empty(gate_rows, hidden_size)))
                setattr(self, f"bias_ih{suffix}", nn.Parameter(torch.empty(gate_rows)))
                setattr(self, f"bias_hh{suffix}", nn.Parameter(torch.empty(gate_rows)))
        self.reset_parameters()

    def _suffixes(self, layer: int) -> list[str]:
        """torch's parameter-name suffix for each direction of one layer."""
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        return (
            f"{self.mode}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bidirectional={self.bidirectional}, dropout={self.dropout}, batch_first={self.batch_first}"
        )

    def forward(self, x: Tensor, lengths: Tensor, hx=None):
        is_lstm = self.mode == "lstm"
        if not self.batch_first:
            x = x.transpose(0, 1)
        lengths = lengths.to(x.device)
        x = x[:, : int(lengths.max())]  # (batch, max_len, input)
        batch = x.size(0)
        if hx is None:
            zeros = x.new_zeros(self.num_layers * self.num_directions, batch, self.hidden_size)
            hx = (zeros, zeros) if is_lstm else zeros
        finals = []  # one state per (layer, direction), in h_n's row order
        layer_input = x
        for layer in range(self.num_layers):
            directions = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                row = layer * self.num_directions + direction
                state = (hx[0][row], hx[1][row]) if is_lstm else hx[row]
                weights = [getattr(self, name + suffix) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                if direction == 0:
                    outputs, state = self._run(layer_input, lengths, state, weights)
                else:
                    # Read each row from its last real token back to its first, then put the
                    # outputs back in reading order so both directions line up position by position.
                    backwards = reverse_within_length(layer_input, lengths)
                    outputs, state = self._run(backwards, lengths, state, weights)
                    outputs = reverse_within_length(outputs, lengths)
                directions.append(outputs)  # (batch, max_len, hidden)
                finals.append(state)
            layer_input = torch.cat(directions, dim=2)  # (batch, max_len, num_directions*hidden)
            if layer < self.num_layers - 1:
                layer_input = dropout(layer_input, self.dropout, self.training)
        outputs = layer_input if self.batch_first else layer_input.transpose(0, 1)
        if is_lstm:
            h_n = torch.stack([h for h, _ in finals])  # (num_layers*num_directions, batch, hidden)
            c_n = torch.stack([c for _, c in finals])  # (num_layers*num_directions, batch, hidden)
            return outputs, (h_n, c_n)
        return outputs, torch.stack(finals)  # h_n (num_layers*num_directions, batch, hidden)

    def _run(self, x: Tensor, lengths: Tensor, state, weights: list[Tensor]):
        """One direction of one layer, left to right over x (batch, max_len, input)."""
        weight_ih, weight_hh, bias_ih, bias_hh = weights
        x_gates = F.linear(x, weight_ih, bias_ih)  # (batch, max_len, gates*hidden): every position at once
        outputs = []
        for t, x_gates_t in enumerate(x_gates.unbind(1)):
            real = (t < lengths)[:, None]  # (batch, 1), False once a row is into its padding
            new = self.step_from_gates(x_gates_t, state, weight_hh, bias_hh)
            if isinstance(state, tuple):
                state = tuple(torch.where(real, n, s) for n, s in zip(new, state))
                h = state[0]
            else:
                state = h = torch.where(real, new, state)
            outputs.append(torch.where(real, h, 0.0))  # (batch, hidden), zero at padding
        return torch.stack(outputs, dim=1), state  # (batch, max_len, hidden)
