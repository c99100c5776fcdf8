"""train_nmt.py's options: every config field is a flag, and a JSON or TOML file may set them too.

Precedence, lowest first: the dataclass defaults, the Transformer's CPU defaults (when
``--arch transformer``), the ``--config`` file, the flags. Help texts, allowed values and
limits come from the fields in nmt/config.py, which also checks them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

from nmt.commands.cli import OneLineErrorParser, UsageError
from nmt.config import (
    SECTION_TYPES,
    Config,
    ConfigError,
    DataConfig,
    ModelConfig,
    choices,
    flag,
)

ALIASES = {"ff_size": ["--ff"]}

# A Transformer trained for minutes on a CPU gets a few thousand updates: the usual GPU recipe
# (warm-up over 4000 steps of 25k-token batches) would never reach its peak rate. Smaller
# batches give more updates, and a short warm-up lets a pre-norm model use a high rate early.
# Measured in 12 minutes (recipes/README.rst): no dropout, +4.35 BLEU beam 5 at d_model 256 and
# +3.67 at 128; Adam's beta2 at 0.98, the Transformer's usual value, +0.85 and +3.35 over 0.999
# on two seeds. At d_model 128, which reads the corpus 2.7 to 3.7 times: 2,000-token batches
# (+1.63 over 3,000), the rate decaying to the deadline (+1.12 over 1/sqrt(step)) and an
# exponential moving average of the weights (+1.92), one run each and so within the machine's
# noise of about 1 BLEU alone; together +2.64 over two runs of the old defaults (41.11 to 43.75,
# seed 1234; 44.18 with seed 2). Then the common peak rate, 3e-3, over the 2e-3 it had of its
# own: +2.19 and +1.84 on two seeds. The Transformer's own sizes are ModelConfig's defaults.
TRANSFORMER_DEFAULTS = {
    "model": {"dropout": 0.0},
    "train": {"warmup": 300, "batch_tokens": 2000, "adam_beta2": 0.98, "ema": 0.995},
}


def build_parser(description: str, prog: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, help="JSON or TOML file with data/model/train sections")
    parser.add_argument(
        "--autoencoder", action="store_true", help="reconstruct the source: target language = source language"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last.pt")
    parser.add_argument("--verbose", action="store_true")
    for section, cls in SECTION_TYPES.items():
        group = parser.add_argument_group(section)
        for f in dataclasses.fields(cls):
            allowed = choices(cls, f.name)
            default = f"{f.default}"
            if f.name in TRANSFORMER_DEFAULTS.get(section, {}):
                default += f"; {TRANSFORMER_DEFAULTS[section][f.name]} with --arch transformer"
            kwargs: dict[str, Any] = {
                "dest": f"{section}.{f.name}",
                "default": argparse.SUPPRESS,
                "help": f"{f.metadata.get('help', '')} (default: {default})".strip(),
            }
            if type(f.default) is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            else:
                kwargs["type"] = type(f.default)
                kwargs["metavar"] = "|".join(allowed) if allowed else f.name.upper()
            group.add_argument(flag(section, f), *ALIASES.get(f.name, []), **kwargs)
    return parser


def make_config(args: argparse.Namespace) -> Config:
    """Dataclass defaults <- architecture defaults <- config file <- flags, checked."""
    given: dict[str, dict[str, Any]] = {section: {} for section in SECTION_TYPES}
    for key, value in vars(args).items():
        if "." in key:
            section, name = key.split(".")
            given[section][name] = value
    from_file = read_config_file(args.config) if args.config else {}
    arch = given["model"].get("arch", from_file.get("model", {}).get("arch", ModelConfig.arch))
    merged: dict[str, dict[str, Any]] = {section: {} for section in SECTION_TYPES}
    for layer in (TRANSFORMER_DEFAULTS if arch == "transformer" else {}, from_file, given):
        for section in merged:
            merged[section].update(layer.get(section, {}))
    if arch == "transformer" and "layers" in given["model"]:
        for name in ("enc_layers", "dec_layers"):
            merged["model"][name] = given["model"].get(name, given["model"]["layers"])
    if args.autoencoder:
        merged["data"]["trg"] = merged["data"].get("src", DataConfig.src)
    try:
        return Config.from_dict(merged)
    except (TypeError, ConfigError) as e:
        raise UsageError(str(e)) from None


def explicit_options(args: argparse.Namespace) -> set[str]:
    """The options the user set, as "section.name": by a flag, --autoencoder or the --config file."""
    given = {key for key in vars(args) if "." in key}
    if args.autoencoder:
        given.add("data.trg")
    from_file = read_config_file(args.config) if args.config else {}
    return given | {f"{section}.{name}" for section, options in from_file.items() for name in options}


def read_config_file(path: Path) -> dict[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: cannot read config ({e})") from None
