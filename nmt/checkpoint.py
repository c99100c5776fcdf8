"""Checkpoints: one file holding everything to translate with, or to resume training from.

Only tensors and plain data go in (config dicts, vocabulary dicts, SentencePiece model bytes),
so every load can use ``torch.load(weights_only=True)``, which refuses to run code hidden in
a pickle. Writes are atomic: a temporary file in the same folder, fsync, then rename, so a
crash mid-write leaves the previous checkpoint untouched.
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from nmt import __version__
from nmt.config import Config
from nmt.seq2seq import build_model
from nmt.tokenizers import tokenizer_from_dict

FORMAT_VERSION = 1
TMP_INFIX = ".tmp-"  # .last.pt.tmp-PID: a save in progress, or one a killed process left behind


class CheckpointError(ValueError):
    pass


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` whole or not at all; a full disk raises CheckpointError
    and leaves the previous file as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TMP_INFIX}{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save({**payload, "format_version": FORMAT_VERSION, "nmt_version": __version__}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a folder gone
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"{path}: not written ({e.strerror or e}); any earlier {path.name} is kept") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def remove_leftovers(folder: str | Path) -> list[Path]:
    """Delete the temporary files of saves that a killed process never finished (a run folder
    belongs to one training at a time, so none of them is still being written)."""
    leftovers = sorted(Path(folder).glob(f".*{TMP_INFIX}*"))
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


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
        # torch's message is a page long and suggests weights_only=False: the one thing not to do
        unsafe = re.search(r"GLOBAL (\S+)", str(e))
        if unsafe:
            raise CheckpointError(f"{path}: refused: loading it would call {unsafe[1]}, and nmt checkpoints "
                                  f"hold only tensors and plain data") from None
        raise CheckpointError(f"{path}: truncated, damaged or not a checkpoint") from None
    except Exception:  # a damaged file fails in many ways: zip, pickle, storage, I/O errors
        raise CheckpointError(f"{path}: truncated, damaged or not a checkpoint") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("format_version"), int):
        raise CheckpointError(f"{path}: not an nmt checkpoint")
    if ckpt["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt['format_version']} (nmt {ckpt.get('nmt_version')}) is newer than this nmt "
            f"({__version__}, format {FORMAT_VERSION}); upgrade nmt to read it"
        )
    return ckpt


def restore_model(ckpt: dict[str, Any], path: str | Path = "checkpoint", device: str | torch.device = "cpu"):
    """(model, src_tokenizer, tgt_tokenizer, config) from a loaded checkpoint."""
    missing = {"config", "tokenizers", "model"} - set(ckpt)
    if missing:
        raise CheckpointError(f"{path}: not a model checkpoint (no {', '.join(sorted(missing))})")
    try:
        config = Config.from_dict(ckpt["config"])
        src_tok = tokenizer_from_dict(ckpt["tokenizers"]["src"])
        tgt_tok = src_tok if ckpt["tokenizers"]["shared"] else tokenizer_from_dict(ckpt["tokenizers"]["tgt"])
        model = build_model(config.model, src_vocab_size=len(src_tok), trg_vocab_size=len(tgt_tok), shared_vocab=ckpt["tokenizers"]["shared"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:  # RuntimeError: SentencePiece's own
        raise CheckpointError(f"{path}: damaged config or tokenizers ({type(e).__name__}: {e})") from None
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
