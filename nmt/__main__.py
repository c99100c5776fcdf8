"""``python -m nmt COMMAND ...``: every program of the toolkit under one name (``python -m nmt --help``)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "train": "train a model (the same as train_nmt.py and nmt-train)",
    "translate": "translate with a checkpoint (translate.py, nmt-translate)",
    "evaluate": "score a checkpoint on a split of its own corpus (nmt-evaluate)",
    "average": "average the weights of saved checkpoints",
    "plot": "learning curves of training runs",
    "fetch": "download a corpus into corpora/",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nmt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command", choices=COMMANDS, help="; ".join(f"{name}: {what}" for name, what in COMMANDS.items())
    )
    parser.add_argument(
        "options", nargs=argparse.REMAINDER, help="the command's options (python -m nmt COMMAND --help)"
    )
    args = parser.parse_args(argv)
    # Imported on demand: translating should not pay for importing the training code, and back.
    return importlib.import_module(f"nmt.commands.{args.command}").main(args.options)


if __name__ == "__main__":
    sys.exit(main())
