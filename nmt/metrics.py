"""Scores with sacrebleu: BLEU, chrF and TER, multi-reference, on real-cased, accented text;
and an autoencoder's reconstruction report (exact match, token accuracy, BLEU)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sacrebleu.metrics import BLEU, CHRF, TER

from nmt.languages import DEFAULT_BLEU_TOKENIZER

# Source words from which a sentence counts as long. Tatoeba is mostly short sentences, and a
# corpus score is dominated by them: the long ones are reported apart so their errors show.
LONG_SENTENCE = 12


@dataclass
class LengthGroup:
    """BLEU of the sentences whose source length falls in one group."""

    name: str
    sentences: int
    bleu: float


@dataclass
class Scores:
    bleu: float
    chrf: float
    ter: float
    signatures: dict[str, str]
    by_length: list[LengthGroup] = field(default_factory=list)

    def __str__(self) -> str:
        groups = "; ".join(f"{g.name} ({g.sentences} sentences) {g.bleu:.2f}" for g in self.by_length)
        return "\n".join(
            [f"BLEU {self.bleu:.2f}  chrF {self.chrf:.2f}  TER {self.ter:.2f}"]
            + ([f"  BLEU by source length: {groups}"] if groups else [])
            + [f"  {name}: {sig}" for name, sig in self.signatures.items()]
        )


def reference_streams(refs: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Per-sentence reference lists -> sacrebleu's reference streams. Sentences with fewer
    references get None in the later streams, which sacrebleu reads as 'no reference here'."""
    width = max(len(r) for r in refs)
    return [[r[k] if k < len(r) else None for r in refs] for k in range(width)]


def score(
    hypotheses: Sequence[str],
    refs: Sequence[Sequence[str]],
    *,
    sources: Sequence[str] | None = None,
    tokenize: str = DEFAULT_BLEU_TOKENIZER,
) -> Scores:
    """hypotheses[i] is scored against every string in refs[i]; with ``sources``, BLEU is also
    given apart for sources under LONG_SENTENCE words and for those of LONG_SENTENCE or more.
    ``tokenize`` is BLEU's sacrebleu tokenizer (nmt.languages.bleu_tokenizer picks it by language)."""
    if len(hypotheses) != len(refs) or (sources is not None and len(sources) != len(refs)):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(refs)} reference sets")
    streams = reference_streams(refs)
    metrics = {"BLEU": BLEU(tokenize=tokenize), "chrF": CHRF(), "TER": TER(case_sensitive=True)}
    results = {name: m.corpus_score(list(hypotheses), streams) for name, m in metrics.items()}
    return Scores(
        bleu=results["BLEU"].score,
        chrf=results["chrF"].score,
        ter=results["TER"].score,
        signatures={name: str(m.get_signature()) for name, m in metrics.items()},
        by_length=[] if sources is None else bleu_by_length(sources, hypotheses, refs, tokenize=tokenize),
    )


def bleu_by_length(
    sources: Sequence[str],
    hypotheses: Sequence[str],
    refs: Sequence[Sequence[str]],
    *,
    long: int = LONG_SENTENCE,
    tokenize: str = DEFAULT_BLEU_TOKENIZER,
) -> list[LengthGroup]:
    """BLEU of the sentences with sources under ``long`` words, and of those with ``long`` or more;
    a group with no sentence is left out."""
    groups = []
    for name, wanted in ((f"under {long} words", False), (f"{long}+ words", True)):
        rows = [i for i, source in enumerate(sources) if (len(source.split()) >= long) == wanted]
        if rows:
            picked = bleu([hypotheses[i] for i in rows], [refs[i] for i in rows], tokenize=tokenize)
            groups.append(LengthGroup(name, len(rows), picked))
    return groups


def bleu(hypotheses: Sequence[str], refs: Sequence[Sequence[str]], *, tokenize: str = DEFAULT_BLEU_TOKENIZER) -> float:
    return BLEU(tokenize=tokenize).corpus_score(list(hypotheses), reference_streams(refs)).score


@dataclass
class Reconstruction:
    sentences: int
    exact: float  # fraction of outputs equal to their input
    token_accuracy: float  # fraction of the inputs' tokens reproduced at their position
    bleu: float

    def __str__(self) -> str:
        return (
            f"exact match {self.exact:.1%}  token accuracy {self.token_accuracy:.1%}  "
            f"BLEU {self.bleu:.2f}  ({self.sentences} sentences)"
        )


def reconstruction(
    outputs: Sequence[str], inputs: Sequence[str], *, tokens: Callable[[str], list[str]]
) -> Reconstruction:
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
