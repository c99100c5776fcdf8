"""``python -m nmt evaluate``: translate a split of the checkpoint's own corpus and score it."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from tqdm import tqdm

from nmt.allocator import keep_freed_memory
from nmt.commands.cli import (
    Exit,
    OneLineErrorParser,
    UsageError,
    add_search_options,
    checkpoint_names,
    load_translator,
    report_cut,
    run,
    search_options,
)
from nmt.config import DataConfig
from nmt.corpora import group_by_source, load_corpus
from nmt.metrics import reconstruction, score
from nmt.text import CorpusError


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


CLI_DOC = """Translate a split of the checkpoint's own corpus and score it.

The split is rebuilt from the data settings and seed stored in the checkpoint, so --split test
is the very test set held out in training, every reference of each source sentence included.
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
    parser.add_argument("--corpus", help="where the checkpoint's corpus is now, when it has moved since training")
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
        help="sentences to show; with --reconstruction, wrong ones (default: 5)",
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
    groups = _split_groups(
        data, split=args.split, corpus=args.corpus, trained_on=translator.corpus, checkpoint=checkpoint_names(args)
    )[: args.limit or None]
    sources = [source for source, _ in groups]
    references = [refs for _, refs in groups]
    print(
        f"{checkpoint_names(args)}: {args.split} split of {args.corpus or data.corpus} ({data.src}->{data.trg}): "
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
    else:
        print(score(outputs, references, sources=sources))
        for source, output, refs in list(zip(sources, outputs, references))[: args.examples]:
            print(
                f"\n  source:      {source}\n  translation: {output}\n  reference:   {refs[0]}"
                + "".join(f"\n               {ref}" for ref in refs[1:])
            )
    return Exit.OK


def _split_groups(
    data: DataConfig, *, split: str, corpus: str | None, trained_on: dict | None, checkpoint: str
) -> list[tuple[str, list[str]]]:
    """(source, its references) of one split, rebuilt as training built it; refused when the
    corpus is not the one the checkpoint was trained on (its fingerprint, ``trained_on``)."""
    try:
        splits = load_corpus(dataclasses.replace(data, corpus=corpus) if corpus else data)
    except CorpusError as e:
        hint = "" if corpus else "; if the corpus has moved, give its place with --corpus"
        raise CorpusError(f"{e}{hint}") from None
    groups = group_by_source(getattr(splits, split))
    if not groups:
        raise CorpusError(
            f"the {split} split of {corpus or data.corpus} is empty (the checkpoint's data settings hold none out)"
        )
    if trained_on and splits.fingerprint != trained_on:
        differ = ", ".join(key for key in trained_on if splits.fingerprint.get(key) != trained_on[key])
        raise CorpusError(
            f"{corpus or data.corpus} is not the corpus {checkpoint} was trained on ({differ} differ), so its "
            f"{split} split would not be held-out data; to score other sentences, use "
            "translate.py --checkpoint CHECKPOINT --input FILE --ref REFERENCES"
        )
    return groups


if __name__ == "__main__":
    sys.exit(main())
