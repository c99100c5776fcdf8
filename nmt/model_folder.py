"""A model to hand to someone else: a folder in the Hugging Face Hub's layout that loads without
this package's pickle rules, or any pickle at all.

    config.json          format, languages, the model / data / train config, corpus fingerprint
    model.safetensors    the weights only (safetensors: tensors and names, nothing to execute);
                         with int8, each matrix as int8 rows and one float scale per row
    source.spm.model     the tokenizers: SentencePiece models as sentencepiece writes them, or a
    target.spm.model     word vocabulary as JSON (source.vocab.json); one file when shared
    README.md            a model card, written from what the checkpoint knows

``load`` turns a folder back into the dict a checkpoint file gives, so everything that takes a
checkpoint (``Translator.from_checkpoint``, ``nmt translate``, ``evaluate``, ``serve``) takes a
folder too and translates the same, token for token.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from nmt.checkpoint import FORMAT_VERSION, CheckpointError
from nmt.metrics import Scores
from nmt.model_card import model_card
from nmt.version import __version__

FOLDER_FORMAT = 2  # the newest layout this nmt reads (2: int8 weights); a newer one is refused
SCALE = ".int8_scale"  # beside an int8 matrix NAME, its per-row scales are NAME.int8_scale
CONFIG, WEIGHTS, CARD = "config.json", "model.safetensors", "README.md"
TOKENIZER_FILES = {"spm": "{side}.spm.model", "word": "{side}.vocab.json"}
PROGRESS = ("step", "epoch", "elapsed", "metrics")  # what the card tells of the training; the optimizer stays behind


def export(checkpoint: dict[str, Any], out_dir: Path, *, evaluation: Scores | None = None, int8: bool = False) -> Path:
    """Write ``checkpoint`` (a loaded checkpoint file) as a model folder at ``out_dir``, which must
    not exist yet: the folder appears whole or not at all. ``int8`` stores every weight matrix in
    int8 (a quarter of the bytes), read back as float matrices rounded to 1/127 of each row's largest
    weight."""
    if out_dir.exists():
        raise CheckpointError(f"{out_dir} exists already; export into a new folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        weights, tied = _untied(checkpoint["model"])
        parameters = sum(t.numel() for t in weights.values())
        int8_names = [name for name, t in weights.items() if t.is_floating_point() and t.dim() == 2] if int8 else []
        for name in int8_names:
            weights[name], weights[name + SCALE] = quantize_rows(weights[name])
        save_file(weights, staging / WEIGHTS, metadata={"format": "pt"})
        tokenizers = {"shared": checkpoint["tokenizers"]["shared"]}
        for side, key in (("source", "src"), ("target", "trg")):
            tokenizer = checkpoint["tokenizers"][key]
            tokenizers[side] = None if tokenizer is None else write_tokenizer(tokenizer, staging, side)
        config = {
            "format": "nmt-model",
            "format_version": 2 if int8 else 1,  # a folder without int8 weights stays readable by older nmt
            "nmt_version": __version__,
            "languages": {"source": checkpoint["config"]["data"]["src"], "target": checkpoint["config"]["data"]["trg"]},
            "config": checkpoint["config"],
            "tokenizers": tokenizers,
            "tied_weights": tied,
            "int8_weights": int8_names,
            "output_ids": checkpoint.get("output_ids"),
            "corpus_fingerprint": checkpoint.get("corpus"),
            "progress": {k: v for k, v in checkpoint.get("progress", {}).items() if k in PROGRESS},
            "evaluation": None if evaluation is None else _scores(evaluation),
        }
        (staging / CONFIG).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (staging / CARD).write_text(model_card(config, parameters), encoding="utf-8")
        _shareable(staging)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def load(folder: Path) -> dict[str, Any]:
    """The checkpoint dict of a model folder, read with json, safetensors and sentencepiece's own
    format only."""
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{folder}: not a model folder (no {CONFIG})") from None
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{folder}/{CONFIG}: damaged ({e})") from None
    if config.get("format") != "nmt-model" or not isinstance(config.get("format_version"), int):
        raise CheckpointError(f"{folder}: not an nmt model folder")
    if config["format_version"] > FOLDER_FORMAT:
        raise CheckpointError(
            f"{folder}: model folder format {config['format_version']} (nmt {config.get('nmt_version')}) is newer "
            f"than this nmt ({__version__}, format {FOLDER_FORMAT}); upgrade nmt to read it"
        )
    try:
        weights = load_file(folder / WEIGHTS)
        for name in config.get("int8_weights", []):
            weights[name] = dequantize_rows(weights[name], weights.pop(name + SCALE))
        for alias, name in config["tied_weights"].items():
            weights[alias] = weights[name]
        target = config["tokenizers"]["target"]
        tokenizers = {
            "shared": config["tokenizers"]["shared"],
            "src": read_tokenizer(config["tokenizers"]["source"], folder),
            "trg": target and read_tokenizer(target, folder),
        }
    except (OSError, KeyError, ValueError) as e:
        raise CheckpointError(f"{folder}: damaged model folder ({type(e).__name__}: {e})") from None
    return {
        "format_version": FORMAT_VERSION,
        "config": config["config"],
        "tokenizers": tokenizers,
        "model": weights,
        "output_ids": config.get("output_ids"),
        "corpus": config.get("corpus_fingerprint"),
        "progress": config.get("progress", {}),
    }


def quantize_rows(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 matrix, float32 scale per row): row r is about int8[r] * scale[r], each weight within
    half a scale step of its value (symmetric: the largest weight of a row maps to +-127)."""
    scale = matrix.abs().amax(dim=1).float().clamp(min=torch.finfo(torch.float32).tiny) / 127
    return torch.round(matrix.float() / scale[:, None]).to(torch.int8), scale


def dequantize_rows(matrix: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return matrix.float() * scale[:, None]


def _shareable(folder: Path) -> None:
    """The permissions of an ordinary folder (a temporary one is private to its owner)."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def _scores(scores: Scores) -> dict:
    return {
        "bleu": scores.bleu,
        "chrf": scores.chrf,
        "ter": scores.ter,
        "signatures": scores.signatures,
        "by_length": [vars(group) for group in scores.by_length],
    }


def _untied(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The weights with each shared tensor kept once (safetensors stores no aliases), and for
    every name left out, the name that holds its tensor."""
    kept: dict[tuple, str] = {}
    weights, tied = {}, {}
    for name, tensor in state.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape), tensor.stride())
        if key in kept:
            tied[name] = kept[key]
        else:
            kept[key] = name
            weights[name] = tensor.contiguous()
    return weights, tied


def write_tokenizer(tokenizer: dict, folder: Path, side: str) -> dict:
    file = TOKENIZER_FILES[tokenizer["kind"]].format(side=side)
    if tokenizer["kind"] == "spm":
        (folder / file).write_bytes(tokenizer["model"])
    else:
        words = {"words": tokenizer["words"], "counts": tokenizer["counts"]}
        (folder / file).write_text(json.dumps(words, ensure_ascii=False) + "\n", encoding="utf-8")
    return {"kind": tokenizer["kind"], "name": tokenizer["name"], "file": file}


def read_tokenizer(entry: dict, folder: Path) -> dict:
    path = folder / entry["file"]
    if entry["kind"] == "spm":
        return {"kind": "spm", "name": entry["name"], "model": path.read_bytes()}
    return {"kind": "word", "name": entry["name"], **json.loads(path.read_text(encoding="utf-8"))}
