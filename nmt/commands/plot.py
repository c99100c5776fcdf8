"""``python -m nmt plot RUN_DIR [RUN_DIR ...] -o curves.png``: learning curves of training runs.

Training and validation loss (both plain cross-entropy per target token, when the run trained
without label smoothing; with it, the training curve is the smoothed objective) and validation
BLEU, against steps and against minutes, every run on the same axes. Reads each run's metrics.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from nmt.commands.cli import Exit, OneLineErrorParser, fail
from nmt.plot import PlotError, check_can_plot, plot_curves


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    parser = OneLineErrorParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (each with a metrics.jsonl)")
    parser.add_argument("-o", "--output", type=Path, default=Path("curves.png"), help="(default: curves.png)")
    args = parser.parse_args(argv)
    try:
        check_can_plot(args.output)
        plot_curves({run.resolve().name: read_metrics(run / "metrics.jsonl") for run in args.runs}, args.output)
    except PlotError as e:
        return fail(e, Exit.ERROR)
    print(args.output)
    return Exit.OK


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics.jsonl; a last line still being written is left out."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise PlotError(f"{path}: cannot read ({e.strerror or e})") from None
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise PlotError(f"{path} line {number}: not a JSON record") from None
    return records


if __name__ == "__main__":
    sys.exit(main())
