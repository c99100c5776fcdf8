"""The device a run or a translation computes on: cpu, cuda, cuda:N, or auto."""

from __future__ import annotations

import torch

from nmt.config import ConfigError


def pick_device(name: str) -> torch.device:
    """The device ``name`` names; "auto" is a GPU when there is one. A name no run can use is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown --device {name!r}: use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but no CUDA device is available")
    return device
