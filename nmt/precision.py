"""Number formats for training and translation: fp32, or autocast to bf16 or fp16.

Autocast runs the matrix products in the 16-bit format and the operations on its fp32 list (the
cross-entropy loss among them) in fp32; the weights and their updates stay fp32 throughout. On a
CPU a softmax under bf16 autocast stays bf16, which is why the search takes its log-probabilities
in fp32 itself. fp16's narrow range also
needs the loss scaled up before the backward pass, so that small gradients do not vanish: a
gradient scaler does that, and skips the update whenever the scale was too large (then lowers
it). bf16 has fp32's range and needs no scaler.

On a GPU, fp32 matrix products use TF32 tensor cores where the GPU has them (Ampere on), as
fairseq and OpenNMT-py do: inputs rounded to 10 bits of mantissa, fp32 accumulation, several
times the throughput. ``NVIDIA_TF32_OVERRIDE=0`` in the environment turns it off for a strict
fp32 run.
"""

from __future__ import annotations

import contextlib
from typing import Literal

import torch

PrecisionName = Literal["fp32", "bf16", "fp16"]
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    def __init__(self, name: PrecisionName = "fp32", device: torch.device | str = "cpu"):
        self.name = name
        self.device_type = torch.device(device).type
        if name == "fp16" and self.device_type != "cuda":
            raise ValueError("--precision fp16 needs a GPU; on the CPU use bf16")
        if name == "bf16" and self.device_type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("--precision bf16: this GPU has no bf16; use fp16")
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=name == "fp16")
        if self.device_type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True  # cuDNN's convolutions and RNNs allow it already

    def autocast(self):
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=DTYPES[self.name])
