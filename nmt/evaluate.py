"""Scores with sacrebleu: BLEU, chrF and TER, multi-reference, on real-cased, accented text;
an autoencoder's reconstruction report; and ``python -m nmt.evaluate``, which scores a
checkpoint on a split of its own corpus."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

from sacrebleu.metrics import BLEU, CHRF, TER
from tqdm import tqdm

from nmt.cli import OneLineErrorParser, UsageError, add_search_options, load_translator, run, search_options
from nmt.config import DataConfig
from nmt.corpora import CorpusError, group_by_source, load_corpus


@dataclass
class Scores:
    bleu: float
    chrf: float
    ter: float
    signatures: dict[str, str]

    def __str__(self) -> str:
        return "\n".join(
            [f"BLEU {self.bleu:.2f}  chrF {self.chrf:.2f}  TER {self.ter:.2f}"]
            + [f"  {name}: {sig}" for name, sig in self.signatures.items()]
        )


def reference_streams(refs: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Per-sentence reference lists -> sacrebleu's reference streams. Sentences with fewer
    references get None in the later streams, which sacrebleu reads as 'no reference here'."""
    width = max(len(r) for r in refs)
    return [[r[k] if k < len(r) else None for r in refs] for k in range(width)]


def score(hypotheses: Sequence[str], refs: Sequence[Sequence[str]]) -> Scores:
    """hypotheses[i] is scored against every string in refs[i]."""
    if len(hypotheses) != len(refs):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(refs)} reference sets")
    streams = reference_streams(refs)
    metrics = {"BLEU": BLEU(), "chrF": CHRF(), "TER": TER(case_sensitive=True)}
    results = {name: m.corpus_score(list(hypotheses), streams) for name, m in metrics.items()}
    return Scores(
        bleu=results["BLEU"].score,
        chrf=results["chrF"].score,
        ter=results["TER"].score,
        signatures={name: str(m.get_signature()) for name, m in metrics.items()},
    )


def bleu(hypotheses: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    return BLEU().corpus_score(list(hypotheses), reference_streams(refs)).score


# ---------------------------------------------------------------------------------------------
# Reconstruction: an autoencoder's outputs against its inputs


@dataclass
class Reconstruction:
    sentences: int
    exact: float  # fraction of outputs equal to their input
    token_accuracy: float  # fraction of the inputs' tokens reproduced at their position
    bleu: float

    def __str__(self) -> str:
        return (f"exact match {self.exact:.1%}  token accuracy {self.token_accuracy:.1%}  "
                f"BLEU {self.bleu:.2f}  ({self.sentences} sentences)")


def reconstruction(outputs: Sequence[str], inputs: Sequence[str], *, tokens: Callable[[str], list[str]]) -> Reconstruction:
    """How well ``outputs`` reproduce ``inputs``; ``tokens`` is the tokenizer's ``tokens``."""
    if len(outputs) != len(inputs):
        raise ValueError(f"{len(outputs)} outputs but {len(inputs)} inputs")
    return Reconstruction(
        sentences=len(inputs),
        exact=sum(o == i for o, i in zip(outputs, inputs)) / max(1, len(inputs)),
        token_accuracy=token_accuracy(outputs, inputs, tokens=tokens),
        bleu=bleu(outputs, [[i] for i in inputs]),
    )


def token_accuracy(outputs: Sequence[str], references: Sequence[str], *, tokens: Callable[[str], list[str]]) -> float:
    """Position by position over the references' tokens: token k of an output is right when it
    is token k of its reference. Missing tokens are wrong; extra ones cost nothing (exact match does)."""
    right = total = 0
    for output, reference in zip(outputs, references):
        out, ref = tokens(output), tokens(reference)
        right += sum(o == r for o, r in zip(out, ref))
        total += len(ref)
    return right / max(1, total)


def mark_first_difference(output: str, reference: str) -> str:
    """``output`` with its first word that differs from ``reference`` in [[...]]; [[]] marks
    where it ends too early. An output equal to its reference comes back as it is."""
    out, ref = output.split(), reference.split()
    for k, (o, r) in enumerate(zip(out, ref)):
        if o != r:
            return " ".join(out[:k] + [f"[[{o}]]"] + out[k + 1:])
    if len(out) < len(ref):
        return " ".join(out + ["[[]]"])
    if len(out) > len(ref):
        return " ".join(out[:len(ref)] + [f"[[{out[len(ref)]}]]"] + out[len(ref) + 1:])
    return output


# ---------------------------------------------------------------------------------------------
# Command line: python -m nmt.evaluate


CLI_DOC = """Translate a split of the checkpoint's own corpus and score it.

The split is rebuilt from the data settings and seed stored in the checkpoint, so --split test
is the very test set held out in training, every reference of each source sentence included.
Prints BLEU, chrF and TER with sacrebleu's signatures; with --reconstruction (autoencoders)
exact match, token accuracy and BLEU, and the first sentences that came back wrong, with
their first wrong word in [[...]].
"""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="python -m nmt.evaluate", description=CLI_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_search_options(parser)
    parser.add_argument("--split", choices=("test", "valid", "train"), default="test", help="which split (default: test)")
    parser.add_argument("--corpus", help="where the checkpoint's corpus is now, when it has moved since training")
    parser.add_argument("--limit", type=int, default=0, metavar="N", help="score only the split's first N source sentences (a random sample; 0: all)")
    parser.add_argument("--reconstruction", action="store_true", help="an autoencoder's report: exact match, token accuracy, BLEU")
    parser.add_argument("--examples", type=int, default=5, metavar="N", help="sentences to show; with --reconstruction, wrong ones (default: 5)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(evaluate_split, build_parser().parse_args(argv))


def evaluate_split(args: argparse.Namespace) -> int:
    if args.limit < 0 or args.examples < 0:
        raise UsageError("--limit and --examples take a number of sentences, 0 or more")
    options = search_options(args)
    translator = load_translator(args, options)
    data = translator.config.data
    if args.reconstruction and not data.autoencoder:
        raise UsageError(f"{args.checkpoint} translates {data.src}->{data.tgt}; --reconstruction needs an autoencoder "
                         "(train_nmt.py --autoencoder)")
    groups = _split_groups(data, split=args.split, corpus=args.corpus)[: args.limit or None]
    sources = [source for source, _ in groups]
    references = [refs for _, refs in groups]
    print(f"{args.checkpoint}: {args.split} split of {args.corpus or data.corpus} ({data.src}->{data.tgt}): "
          f"{len(sources)} sentences, {sum(map(len, references))} references; beam {options['beam']}")
    with tqdm(total=len(sources), unit="sentence", disable=None, file=sys.stderr) as progress:
        outputs = translator.translate(sources, progress=progress, **options)
    if args.reconstruction:
        print(reconstruction(outputs, sources, tokens=translator.tgt_tok.tokens))
        # the sentences that came back wrong: a right one would show nothing
        wrong = [(source, output) for source, output in zip(sources, outputs) if output != source]
        for source, output in wrong[: args.examples]:
            print(f"\n  input:          {source}\n  reconstruction: {mark_first_difference(output, source)}")
    else:
        print(score(outputs, references))
        for source, output, refs in list(zip(sources, outputs, references))[: args.examples]:
            print(f"\n  source:      {source}\n  translation: {output}\n  reference:   {refs[0]}"
                  + "".join(f"\n               {ref}" for ref in refs[1:]))
    return 0


def _split_groups(data: DataConfig, *, split: str, corpus: str | None) -> list[tuple[str, list[str]]]:
    """(source, its references) of one split, rebuilt as training built it."""
    try:
        splits = load_corpus(dataclasses.replace(data, corpus=corpus) if corpus else data)
    except CorpusError as e:
        hint = "" if corpus else "; if the corpus has moved, give its place with --corpus"
        raise CorpusError(f"{e}{hint}") from None
    groups = group_by_source(getattr(splits, split))
    if not groups:
        raise CorpusError(f"the {split} split of {corpus or data.corpus} is empty (the checkpoint's data settings hold none out)")
    return groups


if __name__ == "__main__":
    sys.exit(main())
