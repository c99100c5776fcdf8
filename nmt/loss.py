"""The training loss: token-level cross-entropy over the real (non-PAD) target tokens."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from nmt.specials import PAD


def sequence_loss(logits: Tensor, trg_out: Tensor, *, label_smoothing: float = 0.0) -> Tensor:
    """logits (batch, trg_len, vocab), trg_out (batch, trg_len) -> mean loss per real token."""
    return F.cross_entropy(logits.flatten(0, 1), trg_out.flatten(), ignore_index=PAD, label_smoothing=label_smoothing)
