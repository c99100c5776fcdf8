"""Scores with sacrebleu: BLEU, chrF and TER, multi-reference, on real-cased, accented text."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from sacrebleu.metrics import BLEU, CHRF, TER


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
