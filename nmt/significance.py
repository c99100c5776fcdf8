"""Is one system's translation better than another's, or is the difference noise? Paired tests
on the same sentences, with sacrebleu's own significance module.

Paired bootstrap resampling (Koehn 2004) draws the test set again with replacement, many times,
scoring every system on the same draws: it gives each system's 95% confidence interval and the
p-value of its difference from the first system (the baseline). Approximate randomization
(Riezler and Maxwell 2005) swaps the two systems' outputs of random sentences: it gives the
p-value with fewer assumptions. Both are sacrebleu's (``sacrebleu.significance.PairedTest``),
run here on BLEU and chrF with multi-reference sets; a fixed seed makes them repeatable.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from nmt.languages import DEFAULT_BLEU_TOKENIZER
from nmt.metrics import LONG_SENTENCE, reference_streams

SEED = 12345  # sacrebleu's own default
BOOTSTRAP_SAMPLES = 1000
RANDOMIZATION_TRIALS = 10000


@dataclass
class MetricResult:
    score: float
    ci: float  # half the width of the 95% confidence interval (paired bootstrap)
    p_bootstrap: float | None = None  # of the difference from the baseline; None for the baseline
    p_randomization: float | None = None


@dataclass
class SystemResult:
    name: str
    metrics: dict[str, MetricResult]
    identical: bool = False  # its outputs are the baseline's, line for line: there is no difference to test


@dataclass
class Comparison:
    """Every system's scores on one set of sentences; the first system is the baseline."""

    subset: str  # which sentences: "all", or those of long sources
    sentences: int
    systems: list[SystemResult]
    samples: int
    trials: int
    seed: int
    signatures: dict[str, str]

    def __str__(self) -> str:
        width = max(len("system"), *(len(s.name) for s in self.systems))
        head = f"  {'system':<{width}}  " + "  ".join(f"{m + ' (95% CI)':<20}" for m in self.signatures)
        lines = [f"{self.subset}: {self.sentences} sentences", head + "  p vs the first: bootstrap / randomization"]
        for system in self.systems:
            cells = [f"{r.score:6.2f} ± {r.ci:<5.2f}" + " " * 6 for r in system.metrics.values()]
            p = "; ".join(
                f"{name} {r.p_bootstrap:.4f} / {r.p_randomization:.4f}"
                for name, r in system.metrics.items()
                if r.p_bootstrap is not None
            )
            if system.identical:
                p = "(the same outputs as the first)"
            lines.append(f"  {system.name:<{width}}  " + "  ".join(cells) + f"  {p or '(baseline)'}")
        return "\n".join(lines)


def compare(
    systems: Sequence[tuple[str, Sequence[str]]],
    references: Sequence[Sequence[str]],
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    trials: int = RANDOMIZATION_TRIALS,
    seed: int = SEED,
    subset: str = "all",
    tokenize: str = DEFAULT_BLEU_TOKENIZER,
) -> Comparison:
    """BLEU and chrF of each system (name, its outputs) against ``references`` (per sentence, its
    references), each with its 95% confidence interval and, for all but the first, the
    p-values of its difference from the first: paired bootstrap with ``samples`` resamples, and
    approximate randomization with ``trials`` trials."""
    if len(systems) < 2:
        raise ValueError("a comparison needs two systems or more")
    for name, outputs in systems:
        if len(outputs) != len(references):
            raise ValueError(f"{name} has {len(outputs)} lines but there are {len(references)} references")
    streams = reference_streams(references)
    named = [(name, list(outputs)) for name, outputs in systems]
    with _seed(seed):
        bootstrap_signatures, bootstrap = PairedTest(
            named, _metrics(tokenize), streams, test_type="bs", n_samples=samples
        )()
        _, randomization = PairedTest(named, _metrics(tokenize), streams, test_type="ar", n_samples=trials)()
    metrics = list(bootstrap_signatures)  # sacrebleu's names: BLEU, chrF2
    baseline = named[0][1]
    results = [
        SystemResult(
            name,
            {
                metric: MetricResult(
                    score=bootstrap[metric][i].score,
                    ci=bootstrap[metric][i].ci,
                    p_bootstrap=bootstrap[metric][i].p_value,
                    p_randomization=randomization[metric][i].p_value,
                )
                for metric in metrics
            },
            # sacrebleu's tests, after MultEval, count no zero difference as chance: their p-values
            # for outputs equal to the baseline's are their smallest, and mean nothing
            identical=i > 0 and outputs == baseline,
        )
        for i, (name, outputs) in enumerate(named)
    ]
    signatures = {metric: str(bootstrap_signatures[metric]) for metric in metrics}
    return Comparison(subset, len(references), results, samples, trials, seed, signatures)


def compare_by_length(
    systems: Sequence[tuple[str, Sequence[str]]],
    references: Sequence[Sequence[str]],
    sources: Sequence[str],
    **options,
) -> list[Comparison]:
    """``compare`` on every sentence, then on those whose source has LONG_SENTENCE words or more
    (where short-sentence corpora such as Tatoeba hide a system's errors)."""
    comparisons = [compare(systems, references, **options)]
    long = [i for i, source in enumerate(sources) if len(source.split()) >= LONG_SENTENCE]
    if len(long) > 1:
        subset = [(name, [outputs[i] for i in long]) for name, outputs in systems]
        comparisons.append(
            compare(subset, [references[i] for i in long], subset=f"sources of {LONG_SENTENCE}+ words", **options)
        )
    return comparisons


def _metrics(tokenize: str) -> dict:
    return {"BLEU": BLEU(tokenize=tokenize), "chrF": CHRF()}


@contextmanager
def _seed(seed: int):
    """sacrebleu's tests read their seed from the environment."""
    saved = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = str(seed)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["SACREBLEU_SEED"]
        else:
            os.environ["SACREBLEU_SEED"] = saved
