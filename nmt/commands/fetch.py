"""``nmt fetch deu-eng``: download a corpus into corpora/ unless it is already there.

Names: eng-fra (the project's corpus) or any manythings.org archive's name (deu-eng, spa-eng,
rus-eng, cmn-eng ...: https://www.manythings.org/anki/). Train on it with --corpus NAME and the
two languages, e.g. nmt train --corpus deu-eng --src de --tgt en.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from nmt.commands.cli import Exit
from nmt.download import download_for, fetch
from nmt.text import CorpusError


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", help="eng-fra or a manythings.org pair such as deu-eng")
    parser.add_argument("--dest", type=Path, default=Path("corpora"), help="folder (default: corpora)")
    args = parser.parse_args(argv)
    try:
        download_for(args.name)
    except CorpusError as err:  # a name no download has is a usage error
        parser.error(str(err))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        print(fetch(args.name, args.dest))
    except CorpusError as err:
        parser.exit(Exit.ERROR, f"error: {err}\n")
    return Exit.OK
