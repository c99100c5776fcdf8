"""``nmt export CHECKPOINT OUT_DIR``: a model folder to hand to someone else.

Writes config.json, model.safetensors (the weights only: loading it runs no pickle), the
tokenizers (SentencePiece models or a vocabulary as JSON) and a README.md model card written
from what the checkpoint knows, in the Hugging Face Hub's layout: a folder that can be uploaded
as it is. Every command that takes --checkpoint takes the folder too, and
``Translator.from_pretrained(OUT_DIR)`` loads it. With --evaluate the card gives the test
split's BLEU, chrF and TER (beam 5) with sacrebleu's signatures.

``--format ctranslate2`` writes the Transformer as a CTranslate2 model instead, for its C++
search (nmt.ct2; the ctranslate2 package is an optional extra).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from nmt.checkpoint import load_checkpoint
from nmt.commands.cli import Exit, OneLineErrorParser, UsageError, run
from nmt.commands.evaluate import check_trained_on, rebuilt_splits, split_groups
from nmt.ct2 import MISSING, export_ctranslate2
from nmt.metrics import score
from nmt.model_folder import export
from nmt.search import SearchOptions
from nmt.translator import Translator


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="a checkpoint written by nmt train (best.pt, last.pt)")
    parser.add_argument("out_dir", type=Path, help="the folder to write; it must not exist yet")
    parser.add_argument(
        "--format",
        choices=["nmt", "ctranslate2"],
        default="nmt",
        help="nmt: the folder every nmt command takes (default); ctranslate2: the Transformer as a CTranslate2 "
        "model with its tokenizers, for ctranslate2.Translator (pip install 'nmt[ctranslate2]')",
    )
    parser.add_argument(
        "--evaluate", action="store_true", help="score the test split (beam 5) and put the scores in the model card"
    )
    parser.add_argument(
        "--quantize",
        choices=["int8"],
        help="store every weight matrix in int8 with a scale per row: a quarter of the bytes; the weights load "
        "back rounded, so translations may differ a little from the checkpoint's (--evaluate scores the rounded model)",
    )
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    return run(export_checkpoint, build_parser(prog).parse_args(argv))


def export_checkpoint(args: argparse.Namespace) -> int:
    if args.format == "ctranslate2":
        if importlib.util.find_spec("ctranslate2") is None:
            raise UsageError(MISSING)
        if args.evaluate:
            raise UsageError(
                "--evaluate writes its scores into an nmt folder's model card; not with --format ctranslate2"
            )
        folder = export_ctranslate2(args.checkpoint, args.out_dir, quantize=args.quantize)
        print(f"{folder}: " + ", ".join(sorted(p.name for p in folder.iterdir())))
        return Exit.OK
    checkpoint = load_checkpoint(args.checkpoint)
    int8 = args.quantize == "int8"
    evaluation = None
    if args.evaluate:
        with tempfile.TemporaryDirectory() as tmp:  # score what the folder holds: int8's rounded weights too
            evaluation = _test_scores(export(checkpoint, Path(tmp) / "folder", int8=int8))
    folder = export(checkpoint, args.out_dir, evaluation=evaluation, int8=int8)
    print(f"{folder}: " + ", ".join(sorted(p.name for p in folder.iterdir())))
    return Exit.OK


def _test_scores(path: Path):
    translator = Translator.from_checkpoint(path)
    data = translator.config.data
    splits = rebuilt_splits(data, corpus=None)
    groups = split_groups(splits, split="test", corpus=data.corpus)
    check_trained_on(splits, trained_on=translator.corpus, corpus=data.corpus, checkpoint=str(path))
    sources = [source for source, _ in groups]
    outputs = translator.translate(sources, SearchOptions())
    return score(outputs, [refs for _, refs in groups], sources=sources, tokenize=data.bleu_tokenizer())


if __name__ == "__main__":
    sys.exit(main())
