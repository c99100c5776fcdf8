"""Dropout whose random mask is cheap on a CPU.

torch's CPU dropout draws one random number per element through ``bernoulli_``, a sizeable share
of a small model's training step. Drawing 64 random bits at a time and reading them as four
16-bit numbers costs a third to a quarter of that (docs/experiments.rst, "Speed"), so on a CPU a
mask is made that way: an element is kept
when its 16-bit number clears the threshold for ``p``, i.e. ``p`` is rounded to a multiple of
1/65,536, and the kept elements are scaled by the inverse of the exact keep probability, so the
output's expectation is the input. On a GPU ``F.dropout`` is already a fused kernel and is used
as it is. ``dropout_plain`` computes the same mask one number at a time, for reading first; a
test holds the two equal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LEVELS = 1 << 16  # the values of one 16-bit random number


def dropout_plain(x: Tensor, p: float, training: bool = True) -> Tensor:
    """``dropout`` spelled out on a CPU: the same random words give the same mask."""
    if not training or p == 0 or x.device.type != "cpu" or round(p * _LEVELS) >= _LEVELS:
        return dropout(x, p, training)
    dropped_levels = round(p * _LEVELS)
    words = torch.empty((x.numel() + 3) // 4, dtype=torch.int64)
    words.random_(torch.iinfo(torch.int64).min, None)
    numbers = []
    for word in words.tolist():
        for k in range(4):  # lowest 16 bits first, as a little-endian CPU stores them
            number = (word >> (16 * k)) & 0xFFFF  # uniform over 0..65,535
            numbers.append((number + (1 << 15)) % _LEVELS)  # ordered as their int16 reading orders them
    keep = torch.tensor(numbers[: x.numel()]).view(x.shape) >= dropped_levels  # P(keep) = 1 - dropped / 65,536
    return torch.where(keep, x, 0.0) * (_LEVELS / (_LEVELS - dropped_levels))


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Zero each element of ``x`` with probability ``p`` (to within 1/65,536) and scale the rest
    by 1 / (1 - p), when ``training``; ``x`` itself otherwise."""
    if not training or p == 0:
        return x
    dropped_levels = round(p * _LEVELS)
    if x.device.type != "cpu" or dropped_levels >= _LEVELS:
        return F.dropout(x, p, training)
    words = torch.empty((x.numel() + 3) // 4, dtype=torch.int64)
    # from the int64 minimum: all 64 bits random (random_() alone leaves the sign bit 0)
    words.random_(torch.iinfo(torch.int64).min, None)
    noise = words.view(torch.int16)[: x.numel()].view(x.shape)  # uniform over the 65,536 int16 values
    keep = noise >= torch.iinfo(torch.int16).min + dropped_levels
    # where, not a product with the mask: multiplying by a bool tensor would first copy it to floats
    return torch.where(keep, x, 0.0) * (_LEVELS / (_LEVELS - dropped_levels))


class Dropout(nn.Module):
    """``nn.Dropout`` with the cheap CPU mask of ``dropout``."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability {p} is not between 0 and 1")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
