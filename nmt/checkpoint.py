"""Checkpoints: one file holding everything to translate with, or to resume training from.

Only tensors and plain data go in (config dicts, vocabulary dicts, SentencePiece model bytes),
so every load can use ``torch.load(weights_only=True)``, which refuses to run code hidden in
a pickle. Writes are atomic: a temporary file in the same folder, fsync, then rename, so a
crash mid-write leaves the previous checkpoint untouched.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from nmt import __version__
from nmt.config import Config
from nmt.seq2seq import build_model
from nmt.tokenizers import tokenizer_from_dict

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    pass


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format_version": FORMAT_VERSION, "nmt_version": __version__, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX only; a no-op where directories can't be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first_line = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{path}: refused to load, it holds more than tensors and plain data ({first_line})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{path}: truncated or not a checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise CheckpointError(f"{path}: not an nmt checkpoint")
    if ckpt["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt['format_version']} (nmt {ckpt.get('nmt_version')}) is newer than this nmt "
            f"({__version__}, format {FORMAT_VERSION}); upgrade nmt to read it"
        )
    return ckpt


def restore_model(ckpt: dict[str, Any], path: str | Path = "checkpoint", device: str | torch.device = "cpu"):
    """(model, src_tokenizer, tgt_tokenizer, config) from a loaded checkpoint."""
    config = Config.from_dict(ckpt["config"])
    src_tok = tokenizer_from_dict(ckpt["tokenizers"]["src"])
    tgt_tok = src_tok if ckpt["tokenizers"]["shared"] else tokenizer_from_dict(ckpt["tokenizers"]["tgt"])
    model = build_model(config.model, src_vocab_size=len(src_tok), trg_vocab_size=len(tgt_tok), shared_vocab=ckpt["tokenizers"]["shared"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        detail = str(e).strip().splitlines()[-1].strip()
        raise CheckpointError(f"{path}: the weights do not match the stored config and vocabularies ({detail})") from None
    return model.to(device), src_tok, tgt_tok, config


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """(model in eval mode, src_tokenizer, tgt_tokenizer, config) from a checkpoint file."""
    model, src_tok, tgt_tok, config = restore_model(load_checkpoint(path), path, device)
    return model.eval(), src_tok, tgt_tok, config


def tokenizers_payload(src_tok, tgt_tok) -> dict[str, Any]:
    shared = src_tok is tgt_tok
    return {"src": src_tok.to_dict(), "tgt": None if shared else tgt_tok.to_dict(), "shared": shared}
