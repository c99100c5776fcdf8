"""Checkpoints: one file holding everything to translate with, or to resume training from.

Only tensors and plain data go in (config dicts, vocabulary dicts, SentencePiece model bytes),
so every load can use ``torch.load(weights_only=True)``, which refuses to run code hidden in
a pickle. Writes are atomic (``nmt.files.atomic_write``), so a crash mid-write leaves the
previous checkpoint untouched.
"""

from __future__ import annotations

import pickle
import random
import re
from pathlib import Path
from typing import Any

import torch

from nmt.config import Config
from nmt.files import atomic_write
from nmt.models import build_model
from nmt.tokenizers import tokenizer_from_dict
from nmt.version import __version__

# 2: "tgt" became "trg" in the data config and the tokenizers, the time trained moved from the
# stop rule's state to the progress, and tie_embeddings applies to the RNN too; format 1 files are
# upgraded on load.
FORMAT_VERSION = 2


class CheckpointError(ValueError):
    pass


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` whole or not at all; a full disk raises CheckpointError
    and leaves the previous file as it was."""
    path = Path(path)
    try:
        with atomic_write(path) as f:
            torch.save({**payload, "format_version": FORMAT_VERSION, "nmt_version": __version__}, f)
    except OSError as e:  # a full disk, a folder gone
        raise CheckpointError(f"{path}: not written ({e.strerror or e}); any earlier {path.name} is kept") from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint file's contents, or a model folder's (nmt.model_folder) as the same dict."""
    path = Path(path)
    if path.is_dir():
        from nmt.model_folder import load  # it imports this module

        return load(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message is a page long and suggests weights_only=False: the one thing not to do
        unsafe = re.search(r"GLOBAL (\S+)", str(e))
        if unsafe:
            raise CheckpointError(
                f"{path}: refused: loading it would call {unsafe[1]}, and nmt checkpoints "
                f"hold only tensors and plain data"
            ) from None
        raise CheckpointError(f"{path}: truncated, damaged or not a checkpoint") from None
    except Exception:  # a damaged file fails in many ways: zip, pickle, storage, I/O errors
        raise CheckpointError(f"{path}: truncated, damaged or not a checkpoint") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("format_version"), int):
        raise CheckpointError(f"{path}: not an nmt checkpoint")
    if ckpt["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt['format_version']} (nmt {ckpt.get('nmt_version')}) is newer than "
            f"this nmt ({__version__}, format {FORMAT_VERSION}); upgrade nmt to read it"
        )
    return _upgraded(ckpt)


def _upgraded(ckpt: dict[str, Any]) -> dict[str, Any]:
    if ckpt["format_version"] == 1:
        data = ckpt.get("config", {}).get("data", {})
        if "tgt" in data:
            data["trg"] = data.pop("tgt")
        if "tgt" in ckpt.get("tokenizers", {}):
            ckpt["tokenizers"]["trg"] = ckpt["tokenizers"].pop("tgt")
        model = ckpt.get("config", {}).get("model", {})
        if model.get("arch", "rnn") == "rnn":
            model["tie_embeddings"] = False  # format 1 tied only the Transformer's
        if "progress" in ckpt:
            ckpt["progress"]["elapsed"] = ckpt.get("callbacks", {}).get("StopRule", {}).get("elapsed", 0.0)
    return ckpt


def restore_model(ckpt: dict[str, Any], path: str | Path = "checkpoint", device: str | torch.device = "cpu"):
    """(model, src_tokenizer, trg_tokenizer, config) from a loaded checkpoint."""
    missing = {"config", "tokenizers", "model"} - set(ckpt)
    if missing:
        raise CheckpointError(f"{path}: not a model checkpoint (no {', '.join(sorted(missing))})")
    try:
        config = stored_config(ckpt)
        src_tok, trg_tok = tokenizers_from_payload(ckpt["tokenizers"])
        model = build_model(config.model, src_tok, trg_tok)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:  # RuntimeError: SentencePiece's own
        raise CheckpointError(f"{path}: damaged config or tokenizers ({type(e).__name__}: {e})") from None
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        detail = str(e).strip().splitlines()[-1].strip()
        raise CheckpointError(
            f"{path}: the weights do not match the stored config and vocabularies ({detail})"
        ) from None
    return model.to(device), src_tok, trg_tok, config


def stored_config(ckpt: dict[str, Any]) -> Config:
    """The config a checkpoint was trained with, in today's terms: models saved before
    ``output_vocab`` existed scored every output, and those saved before ``positions`` existed
    added sinusoids."""
    stored = ckpt["config"]
    before = {"output_vocab": "full", "positions": "sinusoidal"}
    return Config.from_dict(stored | {"model": before | stored.get("model", {})})


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """(model in eval mode, src_tokenizer, trg_tokenizer, config) from a checkpoint file."""
    model, src_tok, trg_tok, config = restore_model(load_checkpoint(path), path, device)
    return model.eval(), src_tok, trg_tok, config


def tokenizers_payload(src_tok, trg_tok) -> dict[str, Any]:
    """The tokenizers as plain data: what a checkpoint stores, and the leader sends the other processes."""
    shared = src_tok is trg_tok
    return {"src": src_tok.to_dict(), "trg": None if shared else trg_tok.to_dict(), "shared": shared}


def tokenizers_from_payload(payload: dict[str, Any]):
    """(source, target) tokenizers from ``tokenizers_payload``; one object twice when shared."""
    src_tok = tokenizer_from_dict(payload["src"])
    return src_tok, src_tok if payload["shared"] else tokenizer_from_dict(payload["trg"])


def rng_state() -> dict[str, Any]:
    """Every random generator training draws from, for a resumed run to continue exactly."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
