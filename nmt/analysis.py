"""Where a system gains and loses, as compare-mt (Neubig et al. 2019) shows it: BLEU by source
length, word F-measure by how often each word was seen in training, and the sentences where two
systems differ most. A corpus BLEU hides all three.

Words are the tokens of sacrebleu's BLEU tokenizer (13a unless the target language needs
another), as BLEU counts them. With several references, a sentence's words are matched
against the reference that shares the most with the output.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF

from nmt.languages import DEFAULT_BLEU_TOKENIZER
from nmt.metrics import reference_streams

LENGTH_BUCKETS = ((1, 5), (6, 8), (9, 11), (12, 15), (16, None))  # source words
FREQUENCY_BUCKETS = ((0, 0), (1, 1), (2, 4), (5, 9), (10, 99), (100, 999), (1000, None))  # training occurrences


def words(text: str, tokenize: str = DEFAULT_BLEU_TOKENIZER) -> list[str]:
    return _bleu(tokenize).tokenizer(text).split()


@functools.cache
def _bleu(tokenize: str) -> BLEU:
    return BLEU(tokenize=tokenize)


def bucket_name(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else str(low) if low == high else f"{low}-{high}"


def within(value: int, low: int, high: int | None) -> bool:
    return low <= value and (high is None or value <= high)


@dataclass
class Bucket:
    name: str
    sentences: int  # or words, for the frequency buckets
    score: float


def bleu_by_length(
    outputs: Sequence[str],
    references: Sequence[Sequence[str]],
    sources: Sequence[str],
    tokenize: str = DEFAULT_BLEU_TOKENIZER,
) -> list[Bucket]:
    """Corpus BLEU of the sentences whose source has a number of words in each bucket."""
    buckets = []
    for low, high in LENGTH_BUCKETS:
        chosen = [i for i, source in enumerate(sources) if within(len(source.split()), low, high)]
        if chosen:
            chosen_references = reference_streams([references[i] for i in chosen])
            score = _bleu(tokenize).corpus_score([outputs[i] for i in chosen], chosen_references).score
            buckets.append(Bucket(bucket_name(low, high), len(chosen), score))
    return buckets


@dataclass
class WordBucket:
    name: str
    reference_words: int
    precision: float
    recall: float

    @property
    def f_measure(self) -> float:
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def word_f_by_frequency(
    outputs: Sequence[str],
    references: Sequence[Sequence[str]],
    training_targets: Iterable[str],
    tokenize: str = DEFAULT_BLEU_TOKENIZER,
) -> list[WordBucket]:
    """Precision, recall and F-measure of the output's words, grouped by how many times each word
    occurs on the target side of the training data: rare words are where models fail."""
    frequency = Counter(word for line in training_targets for word in words(line, tokenize))

    def bucket(word: str) -> int:
        return next(k for k, (low, high) in enumerate(FREQUENCY_BUCKETS) if within(frequency[word], low, high))

    matched, in_output, in_reference = Counter(), Counter(), Counter()
    for output, refs in zip(outputs, references):
        out = Counter(words(output, tokenize))
        ref = max((Counter(words(r, tokenize)) for r in refs), key=lambda r: sum((out & r).values()))
        for word, n in (out & ref).items():
            matched[bucket(word)] += n
        for word, n in out.items():
            in_output[bucket(word)] += n
        for word, n in ref.items():
            in_reference[bucket(word)] += n
    return [
        WordBucket(
            bucket_name(low, high),
            in_reference[k],
            precision=matched[k] / in_output[k] if in_output[k] else 0.0,
            recall=matched[k] / in_reference[k] if in_reference[k] else 0.0,
        )
        for k, (low, high) in enumerate(FREQUENCY_BUCKETS)
        if in_output[k] or in_reference[k]
    ]


@dataclass
class Difference:
    source: str
    references: list[str]
    outputs: tuple[str, str]
    chrf: tuple[float, float]


def differ_most(
    sources: Sequence[str],
    references: Sequence[Sequence[str]],
    first: Sequence[str],
    second: Sequence[str],
    n: int,
) -> list[Difference]:
    """The ``n`` sentences whose sentence chrF differs most between two systems, largest first."""
    chrf = CHRF()
    rows = []
    for source, refs, a, b in zip(sources, references, first, second):
        if a != b:
            scores = (chrf.sentence_score(a, list(refs)).score, chrf.sentence_score(b, list(refs)).score)
            rows.append(Difference(source, list(refs), (a, b), scores))
    rows.sort(key=lambda d: abs(d.chrf[0] - d.chrf[1]), reverse=True)
    return rows[:n]


def format_report(by_length: list[Bucket], by_frequency: list[WordBucket]) -> str:
    lines = ["  BLEU by source length (words):"]
    lines += [f"    {b.name:>6}  {b.sentences:>5} sentences  {b.score:6.2f}" for b in by_length]
    lines += ["  output words by frequency in training (F-measure, precision, recall):"]
    lines += [
        f"    {b.name:>9}  {b.reference_words:>6} reference words  F {b.f_measure:.3f}  P {b.precision:.3f}  "
        f"R {b.recall:.3f}"
        for b in by_frequency
    ]
    return "\n".join(lines)
