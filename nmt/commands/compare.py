"""``nmt compare A.fr B.fr [C.fr ...] --ref REF.fr [REF2.fr ...]``: is a difference in BLEU real?

Scores each system's translations (one file each, line k translating source line k) against the
references, and tests each system against the first with paired bootstrap resampling and
approximate randomization (sacrebleu's significance module): every BLEU and chrF comes with
its 95% confidence interval, every difference with its p-values. With --source, the same on
the sentences of long sources (12 words or more). The seed, resamples and trials are printed
with sacrebleu's signatures, so the figures can be had again.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nmt.commands.cli import Exit, OneLineErrorParser, UsageError, add_bleu_tokenize, bleu_tokenize, run
from nmt.commands.textio import TextFileError, read_lines, read_references
from nmt.languages import DEFAULT_BLEU_TOKENIZER, bleu_tokenizer, check_code
from nmt.significance import BOOTSTRAP_SAMPLES, RANDOMIZATION_TRIALS, SEED, Comparison, compare_by_length


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "systems", nargs="+", metavar="HYPOTHESES", help="translations, a file per system; the first is the baseline"
    )
    parser.add_argument("--ref", nargs="+", required=True, metavar="FILE", help="references, a file per reference")
    parser.add_argument("--source", metavar="FILE", help="the sources, to compare on long sentences too")
    parser.add_argument(
        "--samples", type=int, default=BOOTSTRAP_SAMPLES, help=f"bootstrap resamples (default: {BOOTSTRAP_SAMPLES})"
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=RANDOMIZATION_TRIALS,
        help=f"approximate randomization trials (default: {RANDOMIZATION_TRIALS})",
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"the tests' random seed (default: {SEED})")
    parser.add_argument(
        "--tgt", metavar="LANG", help="the references' language: picks BLEU's tokenizer (zh for Chinese, ...)"
    )
    add_bleu_tokenize(parser, default=f"the --tgt language's, else {DEFAULT_BLEU_TOKENIZER}")
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    return run(compare_files, build_parser(prog).parse_args(argv))


def compare_files(args: argparse.Namespace) -> int:
    if len(args.systems) < 2:
        raise UsageError("give two files of translations or more: the first is the baseline")
    if args.samples < 1 or args.trials < 1:
        raise UsageError("--samples and --trials must be at least 1")
    references = read_references(args.ref)
    systems = [(path, read_lines(path)) for path in args.systems]
    sources = read_lines(args.source) if args.source else None
    for path, lines in systems + ([(args.source, sources)] if sources is not None else []):
        if len(lines) != len(references):
            raise TextFileError(f"{path} has {len(lines)} lines but {args.ref[0]} has {len(references)}")
    comparisons = compare_by_length(
        systems,
        references,
        sources or [],
        samples=args.samples,
        trials=args.trials,
        seed=args.seed,
        tokenize=bleu_tokenize(
            args, lambda: bleu_tokenizer(check_code(args.tgt, "--tgt")) if args.tgt else DEFAULT_BLEU_TOKENIZER
        ),
    )
    print_comparisons(comparisons)
    return Exit.OK


def print_comparisons(comparisons: list[Comparison]) -> None:
    for comparison in comparisons:
        print(comparison)
    first = comparisons[0]
    print(
        f"paired bootstrap: {first.samples} resamples; approximate randomization: {first.trials} trials; "
        f"seed {first.seed}"
    )
    for metric, signature in first.signatures.items():
        print(f"  {metric}: {signature}")


if __name__ == "__main__":
    sys.exit(main())
