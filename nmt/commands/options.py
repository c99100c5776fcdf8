"""train_nmt.py's options: every config field is a flag, and a JSON or TOML file may set them too.

Precedence, lowest first: the dataclass defaults, the architecture's (``Config.for_arch``), the
``--config`` file, the flags. Help texts, allowed values and limits come from the fields in
nmt/config.py, which also checks them.
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
    ARCH_DEFAULTS,
    SECTION_TYPES,
    Config,
    ConfigError,
    DataConfig,
    ModelConfig,
    choices,
    flag,
)

ALIASES = {"ff_size": ["--ff"]}


def build_parser(description: str, prog: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, help="JSON or TOML file with data/model/train sections")
    parser.add_argument(
        "--autoencoder", action="store_true", help="reconstruct the source: target language = source language"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last.pt")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start a new run in a --run-dir that holds another run's checkpoints and metrics, deleting them",
    )
    parser.add_argument("--verbose", action="store_true")
    for section, cls in SECTION_TYPES.items():
        group = parser.add_argument_group(section)
        for f in dataclasses.fields(cls):
            allowed = choices(cls, f.name)
            default = f"{f.default}"
            for arch, defaults in ARCH_DEFAULTS.items():
                if f.name in defaults.get(section, {}):
                    default += f"; {defaults[section][f.name]} with --arch {arch}"
            kwargs: dict[str, Any] = {
                "dest": f"{section}.{f.name}",
                "default": argparse.SUPPRESS,
                "help": f"{f.metadata.get('help', '')} (default: {default})".strip(),
            }
            if type(f.default) is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            elif type(f.default) is tuple:  # a pair of files
                kwargs.update(nargs=2, metavar=("SRC", "TRG"))
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
    merged = {section: {**from_file.get(section, {}), **given[section]} for section in SECTION_TYPES}
    arch = merged["model"].pop("arch", ModelConfig.arch)
    if arch == "transformer" and "layers" in given["model"]:
        for name in ("enc_layers", "dec_layers"):
            merged["model"][name] = given["model"].get(name, given["model"]["layers"])
    if args.autoencoder:
        merged["data"]["trg"] = merged["data"].get("src", DataConfig.src)
    try:
        return Config.for_arch(arch, **merged)
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
