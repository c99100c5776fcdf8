"""int8 weights for translating on a CPU.

Dynamic quantization: every ``nn.Linear`` and the LSTM / GRU layers keep their weights in int8,
and each batch's activations are quantized on the fly, so the matrix products run on fbgemm's
int8 kernels. Nothing needs calibrating and the model file is unchanged: a checkpoint is
quantized as it is loaded. One scale serves a whole batch's activations, so unlike fp32 a
sentence's translation can change with the sentences beside it (docs/experiments.rst, "Search
settings").

PyTorch's own ``quantize_dynamic`` does this, and is deprecated in the torch we pin. Its
maintained successor, torchao 0.18, was many times slower than fp32 on a CPU without AMX (its
dynamic int8 ``Linear``), and its ``quantize_`` converts the weights of linear modules only, not
an LSTM's. So the fbgemm path is used, with its deprecation warnings
kept from the user; ``benchmarks/translate_speed.py`` measures what it gains.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

QUANTIZED_LAYERS = {nn.Linear, nn.LSTM, nn.GRU}


def quantize_int8(model: nn.Module) -> nn.Module:
    """``model`` itself (on the CPU), in eval mode, its linear and recurrent layers replaced by
    int8 ones. Not a copy: a model is quantized as it is loaded to translate, and a copy would
    keep a second, unused fp32 model in memory until the quantized one was built."""
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("int8 quantization runs on the CPU only")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices, said above
        quantized = torch.ao.quantization.quantize_dynamic(model, QUANTIZED_LAYERS, dtype=torch.qint8, inplace=True)
    return quantized.eval()  # the int8 layers it puts in are new modules, made in training mode
