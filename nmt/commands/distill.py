"""``nmt distill --teacher T.pt --run-dir D``: a teacher translates its training sources, and
the translations become a student's training corpus (sequence-level knowledge distillation,
Kim & Rush 2016).

The teacher (or an ensemble: --teacher several times) translates each distinct source of the
training split it was trained on, beam 5 by default, into D, streaming to disk: a stopped run
resumes with the same command. D then holds train.SRC and train.TRG (the teacher's outputs),
the teacher's own valid and test splits as they were, and distill.json (which teacher, which
search, which corpus). The printed command trains a student on them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from nmt.commands.cli import (
    Exit,
    OneLineErrorParser,
    UsageError,
    add_model_options,
    add_search_flags,
    load_translator,
    note,
    run,
    search_options,
)
from nmt.commands.evaluate import check_trained_on, rebuilt_splits
from nmt.distillation import RECORD, distill, student_files, teacher_identity


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--teacher",
        required=True,
        action="append",
        metavar="CHECKPOINT",
        help="the teacher's checkpoint or model folder; several times for an ensemble",
    )
    parser.add_argument("--run-dir", required=True, type=Path, help="the folder the student's corpus goes to")
    parser.add_argument(
        "--keep-original",
        action="store_true",
        help="also keep every original training pair, after the teacher's",
    )
    parser.add_argument("--corpus", help="where the teacher's corpus is now, when it has moved since training")
    add_model_options(parser)
    add_search_flags(parser)
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    return run(distill_corpus, build_parser(prog).parse_args(argv))


def distill_corpus(args: argparse.Namespace) -> int:
    options = search_options(args)
    if options.n_best != 1 or options.sample:
        raise UsageError("distillation keeps the teacher's best translation: no --n-best, no --sample")
    translator = load_translator(args, options, args.teacher)
    data = translator.config.data
    if data.autoencoder:
        raise UsageError(f"{args.teacher[0]} is an autoencoder: distillation needs a translation model")
    splits = rebuilt_splits(data, corpus=args.corpus)
    check_trained_on(
        splits, trained_on=translator.corpus, corpus=args.corpus or data.corpus, checkpoint=args.teacher[0]
    )
    sources = len({source for source, _ in splits.train})
    with tqdm(total=sources, unit="sentence", desc="distilling", disable=None, file=sys.stderr) as bar:
        try:
            distill(
                translator,
                splits,
                args.run_dir,
                options,
                teachers=teacher_identity(args.teacher),
                keep_original=args.keep_original,
                batch_size=args.batch_size,
                progress=bar.update,
                on_resume=lambda done, total: (bar.update(done), bar.write(f"resuming: {done} of {total} done")),
            )
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: what is translated stays on disk
            bar.close()
            print(
                f"interrupted: the translations so far are kept in {args.run_dir}; the same command resumes",
                file=sys.stderr,
            )
            return Exit.INTERRUPTED
    print(f"{args.run_dir}: {sources} training sources translated by the teacher")
    empty = json.loads((args.run_dir / RECORD).read_text(encoding="utf-8"))["empty_left_out"]
    if empty:
        note(f"{empty} of them translated to an empty line, left out of the student's corpus")
    print(student_command(args.run_dir, data.src, data.trg))
    return Exit.OK


def student_command(out_dir: Path, src: str, trg: str) -> str:
    """The command that trains a student on a distillation folder (a run folder to fill in)."""
    files = student_files(out_dir, src, trg)
    return (
        f"train a student: nmt train --corpus {out_dir}/train.{{lang}} --src {src} --tgt {trg} "
        f"--valid-files {' '.join(map(str, files['valid']))} --test-files {' '.join(map(str, files['test']))} "
        "--run-dir checkpoints/student"
    )


if __name__ == "__main__":
    sys.exit(main())
