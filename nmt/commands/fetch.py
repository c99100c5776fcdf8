"""``python -m nmt fetch eng-fra``: download a corpus into corpora/ unless it is already there."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from nmt.commands.cli import Exit
from nmt.download import DOWNLOADS, fetch
from nmt.text import CorpusError


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("name", choices=sorted(DOWNLOADS))
    parser.add_argument("--dest", type=Path, default=Path("corpora"), help="folder (default: corpora)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        print(fetch(args.name, args.dest))
    except CorpusError as err:
        parser.exit(Exit.ERROR, f"error: {err}\n")
    return Exit.OK
