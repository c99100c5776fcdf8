"""``python -m nmt evaluate``: translate a split of the checkpoint's own corpus and score it."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from tqdm import tqdm

from nmt.allocator import keep_freed_memory
from nmt.analysis import bleu_by_length, differ_most, format_report, word_f_by_frequency
from nmt.commands.cli import (
    Exit,
    OneLineErrorParser,
    UsageError,
    add_bleu_tokenize,
    add_search_options,
    bleu_tokenize,
    checkpoint_names,
    load_translator,
    report_cut,
    run,
    search_options,
)
from nmt.commands.compare import print_comparisons
from nmt.config import DataConfig
from nmt.corpora import Splits, group_by_source, load_corpus, read_given
from nmt.metrics import reconstruction, score
from nmt.significance import compare_by_length
from nmt.text import CorpusError
from nmt.translator import Translator


def mark_first_difference(output: str, reference: str) -> str:
    """``output`` with its first word that differs from ``reference`` in [[...]]; [[]] marks
    where it ends too early. An output equal to its reference comes back as it is."""
    out, ref = output.split(), reference.split()
    for k, (o, r) in enumerate(zip(out, ref)):
        if o != r:
            return " ".join(out[:k] + [f"[[{o}]]"] + out[k + 1 :])
    if len(out) < len(ref):
        return " ".join(out + ["[[]]"])
    if len(out) > len(ref):
        return " ".join(out[: len(ref)] + [f"[[{out[len(ref)]}]]"] + out[len(ref) + 1 :])
    return output


CLI_DOC = """Translate a split of the checkpoint's own corpus, or a given test set, and score it.

The split is rebuilt from the data settings and seed stored in the checkpoint, so --split test
is the very test set held out in training, every reference of each source sentence included.
--test-files SRC REF scores a standard test set instead, read as training reads given files
(a source on several lines has several references).
Prints BLEU, chrF and TER with sacrebleu's signatures; with --reconstruction (autoencoders)
exact match, token accuracy and BLEU, and the first sentences that came back wrong, with
their first wrong word in [[...]].
"""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=prog, description=CLI_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_search_options(parser)
    parser.add_argument(
        "--split", choices=("test", "valid", "train"), default="test", help="which split (default: test)"
    )
    parser.add_argument(
        "--test-files",
        nargs=2,
        metavar=("SRC", "REF"),
        help="parallel files to score instead of a split: line k of REF translates line k of SRC",
    )
    parser.add_argument("--corpus", help="where the checkpoint's corpus is now, when it has moved since training")
    add_bleu_tokenize(parser)
    parser.add_argument(
        "--limit",
        type=int,
        default=0,
        metavar="N",
        help="score only the split's first N source sentences (a random sample; 0: all)",
    )
    parser.add_argument(
        "--reconstruction", action="store_true", help="an autoencoder's report: exact match, token accuracy, BLEU"
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=5,
        metavar="N",
        help="sentences to show; with --reconstruction, wrong ones; with --compare and --report, those where "
        "the first two systems differ most (default: 5)",
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="OTHER",
        help="other checkpoints trained on the same corpus and split: translate the split with each too, and "
        "test each against this one (nmt compare: confidence intervals and p-values)",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="where the model gains and loses: BLEU by source length, and output words' F-measure by how often "
        "they occur in training",
    )
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    keep_freed_memory()
    return run(evaluate_split, args)


def evaluate_split(args: argparse.Namespace) -> int:
    if args.limit < 0 or args.examples < 0:
        raise UsageError("--limit and --examples take a number of sentences, 0 or more")
    options = search_options(args)
    translator = load_translator(args, options)
    data = translator.config.data
    if args.reconstruction and not data.autoencoder:
        raise UsageError(
            f"{checkpoint_names(args)} translates {data.src}->{data.trg}; --reconstruction needs an autoencoder "
            "(train_nmt.py --autoencoder)"
        )
    if args.reconstruction and args.compare:
        raise UsageError("--compare scores translations; an autoencoder's --reconstruction takes no --compare")
    tokenize = bleu_tokenize(args, data.bleu_tokenizer)
    corpus = args.corpus or data.corpus
    if args.test_files:
        splits = None
        groups = group_by_source(read_given(args.test_files))[: args.limit or None]
        what = " + ".join(args.test_files)
    else:
        splits = rebuilt_splits(data, corpus=args.corpus)
        groups = split_groups(splits, split=args.split, corpus=corpus)[: args.limit or None]
        check_trained_on(splits, trained_on=translator.corpus, corpus=corpus, checkpoint=checkpoint_names(args))
        what = f"{args.split} split of {corpus}"
    others = [_other(args, options, path, translator) for path in args.compare or []]
    sources = [source for source, _ in groups]
    references = [refs for _, refs in groups]
    print(
        f"{checkpoint_names(args)}: {what} ({data.src}->{data.trg}): "
        f"{len(sources)} sentences, {sum(map(len, references))} references; beam {options.beam}"
    )
    with tqdm(total=len(sources), unit="sentence", disable=None, file=sys.stderr) as progress:
        translations = translator.translate_n_best(sources, options, batch_size=args.batch_size, progress=progress)
    outputs = [t.hypotheses[0] for t in translations]
    report_cut(sum(t.cut[0] for t in translations), len(translations))
    if args.reconstruction:
        print(reconstruction(outputs, sources, tokens=translator.trg_tok.tokens))
        # the sentences that came back wrong: a right one would show nothing
        wrong = [(source, output) for source, output in zip(sources, outputs) if output != source]
        for source, output in wrong[: args.examples]:
            print(f"\n  input:          {source}\n  reconstruction: {mark_first_difference(output, source)}")
        return Exit.OK
    print(score(outputs, references, sources=sources, tokenize=tokenize))
    if args.report:
        train = (splits or rebuilt_splits(data, corpus=args.corpus)).train
        by_frequency = word_f_by_frequency(outputs, references, (trg for _, trg in train), tokenize)
        print(format_report(bleu_by_length(outputs, references, sources, tokenize), by_frequency))
    if not others:
        for source, output, refs in list(zip(sources, outputs, references))[: args.examples]:
            print(
                f"\n  source:      {source}\n  translation: {output}\n  reference:   {refs[0]}"
                + "".join(f"\n               {ref}" for ref in refs[1:])
            )
        return Exit.OK
    systems = [(checkpoint_names(args), outputs)]
    for path, other in others:
        print(f"translating with {path}", file=sys.stderr)
        translations = other.translate_n_best(sources, options, batch_size=args.batch_size)
        systems.append((path, [t.hypotheses[0] for t in translations]))
    print_comparisons(compare_by_length(systems, references, sources, tokenize=tokenize))
    if args.report:
        for d in differ_most(sources, references, systems[0][1], systems[1][1], args.examples):
            print(
                f"\n  source:    {d.source}\n  reference: {d.references[0]}\n"
                f"  chrF {d.chrf[0]:5.1f}  {d.outputs[0]}\n  chrF {d.chrf[1]:5.1f}  {d.outputs[1]}"
            )
    return Exit.OK


def _other(args: argparse.Namespace, options, path: str, first: Translator) -> tuple[str, Translator]:
    """Another checkpoint to compare, refused unless it was trained on the first one's corpus and
    split: otherwise this split could hold its training sentences."""
    other = load_translator(args, options, path)
    if other.corpus != first.corpus or other.config.data.trg != first.config.data.trg:
        raise CorpusError(
            f"{path} was not trained on the corpus and split of {checkpoint_names(args)}: "
            "compare them on a file instead (nmt translate, then nmt compare)"
        )
    return path, other


def rebuilt_splits(data: DataConfig, *, corpus: str | None) -> Splits:
    """The corpus's splits, rebuilt as training built them."""
    try:
        splits = load_corpus(dataclasses.replace(data, corpus=corpus) if corpus else data)
    except CorpusError as e:
        hint = "" if corpus else "; if the corpus has moved, give its place with --corpus"
        raise CorpusError(f"{e}{hint}") from None
    return splits


def check_trained_on(splits: Splits, *, trained_on: dict | None, corpus: str, checkpoint: str) -> None:
    """Refuse a corpus other than the one the checkpoint was trained on (its fingerprint,
    ``trained_on``): its splits would not hold out what they held out in training."""
    if trained_on and splits.fingerprint != trained_on:
        differ = ", ".join(key for key in trained_on if splits.fingerprint.get(key) != trained_on[key])
        raise CorpusError(
            f"{corpus} is not the corpus {checkpoint} was trained on ({differ} differ), so its splits would "
            "not hold out what they held out in training; to score other sentences, use "
            "translate.py --checkpoint CHECKPOINT --input FILE --ref REFERENCES"
        )


def split_groups(splits: Splits, *, split: str, corpus: str) -> list[tuple[str, list[str]]]:
    """(source, its references) of one split."""
    groups = group_by_source(getattr(splits, split))
    if not groups:
        raise CorpusError(f"the {split} split of {corpus} is empty (the checkpoint's data settings hold none out)")
    return groups


if __name__ == "__main__":
    sys.exit(main())
