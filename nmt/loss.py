"""The training loss: token-level cross-entropy over the real (non-PAD) target tokens."""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor

from nmt.specials import PAD, SOS


class Loss(NamedTuple):
    objective: Tensor  # what training minimises: the cross-entropy, label-smoothed when asked
    cross_entropy: Tensor  # the plain cross-entropy: what is logged, so training and validation compare


def sequence_loss(logits: Tensor, trg_out: Tensor, *, label_smoothing: float = 0.0) -> Loss:
    """logits (batch, trg_len, vocab), trg_out (batch, trg_len) -> means per real target token.

    Label smoothing moves ``label_smoothing`` of the target's probability evenly onto the tokens
    a model may output: every token but PAD and SOS, which no search ever emits (torch's own
    ``label_smoothing`` would give them a share too).
    """
    logits, target = logits.flatten(0, 1), trg_out.flatten()  # (tokens, vocab), (tokens,)
    if not label_smoothing:
        cross_entropy = F.cross_entropy(logits, target, ignore_index=PAD)
        return Loss(cross_entropy, cross_entropy)
    log_probs = logits.float().log_softmax(dim=-1)  # (tokens, vocab)
    cross_entropy = F.nll_loss(log_probs, target, ignore_index=PAD)
    real = target != PAD  # (tokens,)
    outputs = log_probs.size(-1) - 2
    spread = -(log_probs.sum(-1) - log_probs[:, PAD] - log_probs[:, SOS]) / outputs  # (tokens,)
    uniform = (spread * real).sum() / real.sum()  # the mean over real tokens; indexing by a mask would wait for a GPU
    return Loss((1 - label_smoothing) * cross_entropy + label_smoothing * uniform, cross_entropy)
