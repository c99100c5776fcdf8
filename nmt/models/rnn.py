"""Choosing and running a recurrent layer: torch's fused one, or the from-scratch one in cells.py.

Both take the same arguments and give the same results (tests/test_cells.py shows it), so the
encoder and decoder never need to know which one they hold.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.models.cells import ScratchRNN

TORCH_RNNS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def make_rnn(
    cell: str,
    impl: str,
    input_size: int,
    hidden_size: int,
    *,
    layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
) -> nn.Module:
    dropout = dropout if layers > 1 else 0.0  # torch warns about dropout on a single layer
    if impl == "scratch":
        return ScratchRNN(
            cell,
            input_size,
            hidden_size,
            num_layers=layers,
            bidirectional=bidirectional,
            dropout=dropout,
            batch_first=True,
        )
    return TORCH_RNNS[cell](
        input_size, hidden_size, num_layers=layers, bidirectional=bidirectional, dropout=dropout, batch_first=True
    )


def run_rnn(rnn: nn.Module, x: Tensor, lengths: Tensor | None = None, hx=None):
    """Run ``rnn`` over batch-first ``x``; with ``lengths``, padding is skipped entirely
    (masked for the scratch version, packed for torch's, and its int8 twins), so it never
    reaches the final states."""
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        # oneDNN has no bf16 LSTM on most CPUs: the recurrence runs in fp32, the layers around it in bf16
        with torch.autocast("cpu", enabled=False):
            return run_rnn(rnn, x.float(), lengths, _to_float(hx))
    if isinstance(rnn, ScratchRNN):
        if lengths is None:
            lengths = torch.full((x.size(0),), x.size(1))
        out, final = rnn(x, lengths, hx)
        # Like pad_packed_sequence, the scratch RNN trims to the longest sequence; restore full length.
        return F.pad(out, (0, 0, 0, x.size(1) - out.size(1))), final
    if lengths is None:
        return rnn(x, hx)
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, final = rnn(packed, hx)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
    return out, final


def _to_float(hx):
    """An initial state (h, or an LSTM's (h, c), or None) in fp32."""
    if hx is None:
        return None
    return tuple(h.float() for h in hx) if isinstance(hx, tuple) else hx.float()
