"""``python -m nmt average``: average the weights of saved checkpoints into one checkpoint.

    python -m nmt average checkpoints/NAME --last 5 -o checkpoints/NAME/average.pt
    python -m nmt average checkpoints/NAME --best 3 -o checkpoints/NAME/average.pt
    python -m nmt average a.pt b.pt c.pt -o average.pt

A run folder's candidates are the step-STEP.pt files train_nmt.py keeps with
--keep-checkpoints N: --last takes the latest, --best those with the best validation BLEU.
The result is a normal checkpoint: translate.py and python -m nmt evaluate take it as it is.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from nmt.averaging import average_checkpoints
from nmt.callbacks import step_checkpoints
from nmt.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from nmt.commands.cli import Exit, OneLineErrorParser, UsageError, fail


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=Path, help="a run folder, or checkpoint files")
    pick = parser.add_mutually_exclusive_group()
    pick.add_argument("--last", type=int, metavar="N", help="a run folder's N latest step-*.pt")
    pick.add_argument("--best", type=int, metavar="N", help="a run folder's N step-*.pt of best validation BLEU")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the averaged checkpoint to write")
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        paths = checkpoints_to_average(args)
        save_checkpoint(args.output, average_checkpoints(paths))
    except UsageError as e:
        return fail(e, Exit.USAGE)
    except CheckpointError as e:
        return fail(e, Exit.ERROR)
    print(f"{args.output}: the average of {', '.join(map(str, paths))}")
    return Exit.OK


def checkpoints_to_average(args: argparse.Namespace) -> list[Path]:
    count = args.last if args.last is not None else args.best
    if count is None:
        if any(path.is_dir() for path in args.inputs):
            raise UsageError("a run folder needs --last N or --best N")
        return list(args.inputs)
    if len(args.inputs) != 1:
        raise UsageError("--last and --best take one run folder")
    if not args.inputs[0].exists():
        raise CheckpointError(f"{args.inputs[0]}: no such run folder")
    if not args.inputs[0].is_dir():
        raise UsageError(f"{args.inputs[0]} is a file: --last and --best take a run folder")
    if count < 1:
        raise UsageError(f"--last / --best take at least 1 checkpoint, not {count}")
    kept = step_checkpoints(args.inputs[0])
    if len(kept) < count:
        raise UsageError(
            f"{args.inputs[0]} keeps {len(kept)} step-*.pt checkpoints, fewer than {count} "
            "(train with --keep-checkpoints N)"
        )
    if args.last is not None:
        return kept[-count:]
    bleu = {path: load_checkpoint(path)["progress"]["metrics"]["valid_bleu"] for path in kept}
    return sorted(kept, key=lambda path: bleu[path], reverse=True)[:count]


if __name__ == "__main__":
    sys.exit(main())
