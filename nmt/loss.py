"""The training loss: token-level cross-entropy over the real (non-PAD) target tokens."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from nmt.specials import PAD, SOS


class Loss(NamedTuple):
    objective: Tensor  # what training minimises: the cross-entropy, label-smoothed when asked
    cross_entropy: Tensor  # the plain cross-entropy: what is logged, so training and validation compare


def sequence_loss(logits: Tensor, trg_out: Tensor, *, label_smoothing: float = 0.0) -> Loss:
    """logits (batch, trg_len, vocab), trg_out (batch, trg_len) -> means per real target token.

    Label smoothing moves ``label_smoothing`` of the target's probability evenly onto the tokens
    a model may output: every token but PAD and SOS, which no search ever emits (torch's own
    ``label_smoothing`` would give them a share too). ``smoothed_loss_plain`` is that objective
    as plain tensor operations; training runs ``_SmoothedCrossEntropy``, the same with its
    gradient written out (tested equal).
    """
    logits, target = logits.flatten(0, 1), trg_out.flatten()  # (tokens, vocab), (tokens,)
    if not label_smoothing:
        cross_entropy = F.cross_entropy(logits, target, ignore_index=PAD)
        return Loss(cross_entropy, cross_entropy)
    return Loss(*_SmoothedCrossEntropy.apply(logits, target, label_smoothing))


def smoothed_loss_plain(logits: Tensor, trg_out: Tensor, label_smoothing: float) -> Loss:
    """The label-smoothed objective as plain tensor operations, for autograd to differentiate:
    (1 - e) x the cross-entropy + e x the mean negative log-probability of the outputs a model
    can give (all but PAD and SOS), per real target token. Read this one first."""
    log_probs = logits.float().log_softmax(-1).flatten(0, 1)  # (tokens, vocab)
    target = trg_out.flatten()  # (tokens,)
    real = target != PAD
    cross_entropy = F.nll_loss(log_probs, target, ignore_index=PAD)
    spread = -(log_probs.sum(-1) - log_probs[:, PAD] - log_probs[:, SOS]) / (log_probs.size(-1) - 2)  # (tokens,)
    return Loss((1 - label_smoothing) * cross_entropy + label_smoothing * spread[real].mean(), cross_entropy)


class _SmoothedCrossEntropy(torch.autograd.Function):
    """The label-smoothed objective and the plain cross-entropy, with the objective's gradient
    written out: softmax - (1 - e) onehot(target) - e / outputs on every output, per real token.

    Autograd would build that gradient from a zero-filled tensor per term (the target's pick,
    PAD's and SOS's columns; three (tokens, vocab) fills a step in the profile) and add them up,
    each in freshly allocated memory, which above glibc's 32 MiB heap limit (a Transformer's
    3,000-token batch: 69 MB) page-faults anew at every step. Here backward turns the saved log-probabilities
    into the gradient in place.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, smoothing: float) -> tuple[Tensor, Tensor]:
        log_probs = logits.float().log_softmax(dim=-1)  # (tokens, vocab)
        real = target != PAD  # (tokens,)
        count = real.sum()  # a tensor: a count read on the host would wait for a GPU
        cross_entropy = -(log_probs.gather(1, target[:, None]).squeeze(1) * real).sum() / count
        outputs = log_probs.size(1) - 2
        spread = -(log_probs.sum(1) - log_probs[:, PAD] - log_probs[:, SOS]) / outputs  # (tokens,)
        objective = (1 - smoothing) * cross_entropy + smoothing * (spread * real).sum() / count
        ctx.save_for_backward(log_probs, target, real, count)
        ctx.smoothing, ctx.dtype = smoothing, logits.dtype
        ctx.mark_non_differentiable(cross_entropy)
        return objective, cross_entropy

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_objective: Tensor, _grad_cross_entropy: Tensor):
        log_probs, target, real, count = ctx.saved_tensors
        smoothing = ctx.smoothing
        share = smoothing / (log_probs.size(1) - 2)
        grad = log_probs.exp_()  # the softmax, in the log-probabilities' memory: they are not needed again
        grad.sub_(share)
        grad[:, PAD] += share
        grad[:, SOS] += share
        grad.scatter_add_(1, target[:, None], grad.new_full((grad.size(0), 1), smoothing - 1))
        grad.mul_((real * (grad_objective / count))[:, None])
        return grad.to(ctx.dtype), None, None
