"""Translate with a trained checkpoint: stdin to stdout, or files.

    translate.py --checkpoint checkpoints/NAME/best.pt < input.en > output.fr
    translate.py --checkpoint ... --input test.en --output test.fr --ref ref1.fr ref2.fr
    translate.py --checkpoint ... --interactive

Every input line gives one output line, in order; an empty line gives an empty line. With
--n-best K each input line gives its K best translations instead, best first, one a line, as
LINE<TAB>SCORE<TAB>TRANSLATION: LINE is the 1-based input line number, SCORE what the beam
ranked by (log-probability / length penalty). An --output file is written only once every line
is translated, so an error leaves no partial file. --ref prints BLEU, chrF and TER of the best
translations on stderr, with sacrebleu's signatures.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from collections.abc import Iterable, Iterator, Sequence

from tqdm import tqdm

from nmt import plot
from nmt.allocator import keep_freed_memory
from nmt.commands.cli import (
    Exit,
    OneLineErrorParser,
    UsageError,
    add_bleu_tokenize,
    add_search_options,
    bleu_tokenize,
    checkpoint_names,
    load_translator,
    note,
    report_cut,
    report_unknown_words,
    run,
    search_options,
)
from nmt.commands.textio import (
    STDIN,
    TextFileError,
    count_lines,
    iter_lines,
    read_references,
    write_lines_atomic,
    write_lines_to_stdout,
)
from nmt.search import SearchOptions
from nmt.text import normalize
from nmt.translator import Translation, Translator


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_search_options(parser)
    add_bleu_tokenize(parser)
    parser.add_argument("--input", default=STDIN, help="UTF-8 text, one sentence a line (default: stdin)")
    parser.add_argument("--output", default=STDIN, help="where the translations go (default: stdout)")
    parser.add_argument(
        "--n-best",
        dest="n_best",
        type=int,
        metavar="K",
        help="print the K best translations of each line (default: 1; with --interactive, the whole beam)",
    )
    parser.add_argument(
        "--ref",
        nargs="+",
        metavar="FILE",
        help="reference translations, one file per reference, line k of each translating input line k",
    )
    parser.add_argument(
        "--interactive", action="store_true", help="translate each line typed, showing the beam's n-best"
    )
    parser.add_argument(
        "--chunk-lines",
        type=int,
        default=10_000,
        metavar="N",
        help="lines read, sorted by length and translated at a time: memory stays flat whatever the "
        "input's length (default: 10000)",
    )
    sampling = parser.add_argument_group(
        "sampling", "draw each token from the model's distribution instead of searching (for back-translation)"
    )
    sampling.add_argument(
        "--sample", action="store_true", default=None, help="sample the outputs; --n-best K gives K per line"
    )
    sampling.add_argument(
        "--temperature",
        type=float,
        metavar="T",
        help=f"divide the log-probabilities by T (default: {SearchOptions.temperature})",
    )
    sampling.add_argument("--top-k", type=int, metavar="K", help="draw from the K most probable tokens only")
    sampling.add_argument(
        "--top-p", type=float, metavar="P", help="draw from the fewest most probable tokens that reach probability P"
    )
    sampling.add_argument("--seed", type=int, help="the same seed and input give the same samples")
    parser.add_argument(
        "--plot-attention",
        metavar="FILE.png",
        help="one attention heatmap per input line, FILE-1.png, FILE-2.png, ... (needs matplotlib)",
    )
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    keep_freed_memory()
    return run(translate_interactively if args.interactive else translate_file, args)


def translate_file(args: argparse.Namespace) -> int:
    """Translate the input as it streams in, a bounded chunk of lines at a time, and write each
    chunk's translations in input order; memory stays flat however long the file."""
    options = search_options(args)
    if args.chunk_lines < 1:
        raise UsageError(f"--chunk-lines must be at least 1, not {args.chunk_lines}")
    translator = _prepare(args, options)
    total = count_lines(args.input)
    references = read_references(args.ref) if args.ref else None
    if references is not None and total is not None:
        check_reference_count(args.ref, references, total)
    tally = _Tally(translator, keep_for_scoring=references is not None)
    with tqdm(total=total, unit="line", disable=True if args.input == STDIN else None, file=sys.stderr) as progress:
        translations = tally.count(
            translator.translate_stream(
                iter_lines(args.input),
                options,
                chunk_lines=args.chunk_lines,
                batch_size=args.batch_size,
                attention=bool(args.plot_attention),
                progress=progress,
            )
        )
        if args.plot_attention:
            translations = _plotting(translator, translations, args.plot_attention)
        output = _output_lines(translations, n_best=options.n_best)
        if args.output == STDIN:
            write_lines_to_stdout(output)
        else:
            write_lines_atomic(args.output, output)
    if tally.lines == 0:
        note(f"{_name(args.input)} is empty: nothing to translate")
    tally.report()
    if references is not None:
        check_reference_count(args.ref, references, tally.lines)
        tokenize = bleu_tokenize(args, translator.config.data.bleu_tokenizer)
        from nmt.metrics import score  # here: sacrebleu's import is for --ref alone

        print(score(tally.hypotheses, references, sources=tally.sources, tokenize=tokenize), file=sys.stderr)
    return Exit.OK


class _Tally:
    """What is reported once a streamed translation is done: unknown source words, outputs cut
    by the length limit, and, to score them, the sources and best translations."""

    def __init__(self, translator: Translator, *, keep_for_scoring: bool):
        self.translator = translator
        self.keep_for_scoring = keep_for_scoring
        self.lines = 0
        self.cut = 0
        self.unknown: dict[str, None] = {}
        self.sources: list[str] = []
        self.hypotheses: list[str] = []

    def count(self, translations: Iterable[Translation]) -> Iterator[Translation]:
        for t in translations:
            self.lines += 1
            self.cut += t.cut[0]
            self.unknown.update(dict.fromkeys(self.translator.src_tok.unknown_words(t.source)))
            if self.keep_for_scoring:
                self.sources.append(t.source)
                self.hypotheses.append(t.hypotheses[0])
            yield t

    def report(self) -> None:
        report_unknown_words(self.unknown)
        report_cut(self.cut, self.lines)


def translate_interactively(args: argparse.Namespace) -> int:
    """A prompt: each line typed is translated, and the beam's n-best shown with their scores.
    When stdin is not a terminal each input is echoed after "> ", so the transcript reads the same."""
    if args.input != STDIN or args.output != STDIN or args.ref:
        raise UsageError("--interactive reads stdin and writes stdout; leave out --input, --output and --ref")
    options = search_options(args)
    if args.n_best is None:  # the whole beam
        options = dataclasses.replace(options, n_best=options.beam)
    translator = _prepare(args, options)
    terminal = sys.stdin.isatty()
    for number, line in enumerate(_typed_lines("> " if terminal else ""), start=1):
        if not terminal:
            print(f"> {line}")
        if not line:
            continue
        report_unknown_words(translator.src_tok.unknown_words(line))
        [translation] = translator.translate_n_best(
            [line], options, batch_size=args.batch_size, attention=bool(args.plot_attention)
        )
        for k, (hypothesis, value) in enumerate(zip(translation.hypotheses, translation.scores), start=1):
            print(f"{k:>3}  {value:8.4f}  {hypothesis}")
        if args.plot_attention:
            _plot(translator, [translation], args.plot_attention, numbers=[number])
        sys.stdout.flush()
    return Exit.OK


def _typed_lines(prompt: str) -> Iterator[str]:
    """Normalised lines from stdin until it ends or Ctrl-C is pressed."""
    for number in itertools.count(1):
        try:
            yield normalize(input(prompt))
        except (EOFError, KeyboardInterrupt):
            return
        except UnicodeDecodeError:
            raise TextFileError(f"<stdin> line {number}: not UTF-8") from None


def check_reference_count(paths: Sequence[str], references: list[list[str]], n_lines: int) -> None:
    if len(references) != n_lines:
        raise TextFileError(
            f"{paths[0]} has {len(references)} lines but the input has {n_lines}: "
            "a reference file must have one line per input line"
        )


def _prepare(args: argparse.Namespace, options: SearchOptions) -> Translator:
    """The translator, once everything that can be checked before reading any input is: the
    checkpoint, the options, and for plots the model's attention and matplotlib."""
    translator = load_translator(args, options)
    if args.plot_attention:
        if not translator.has_attention():
            raise UsageError(
                f"{checkpoint_names(args)}: this model has no attention to plot (an RNN trained with --attention none)"
            )
        plot.check_can_plot(args.plot_attention)
    return translator


def _output_lines(translations: list[Translation], *, n_best: int) -> Iterator[str]:
    if n_best == 1:
        yield from (t.hypotheses[0] for t in translations)
        return
    for number, t in enumerate(translations, start=1):
        for hypothesis, value in zip(t.hypotheses, t.scores):
            yield f"{number}\t{value:.4f}\t{hypothesis}"


def _plotting(translator: Translator, translations: Iterable[Translation], path: str) -> Iterator[Translation]:
    """Pass the translations on, drawing the attention of each as it goes by."""
    for number, t in enumerate(translations, start=1):
        _plot(translator, [t], path, numbers=[number])
        yield t


def _plot(translator: Translator, translations: list[Translation], path: str, *, numbers) -> None:
    """One heatmap per non-empty line, of its best translation, named by the line's number."""
    for number, t in zip(numbers, translations):
        if t.attention is None:
            continue
        target = plot.numbered_path(path, number)
        plot.plot_attention(
            t.attention[0],
            source=translator.source_tokens(t.source),
            output=translator.output_tokens(t),
            path=target,
            title=f"{t.source}\n{t.hypotheses[0]}",
        )
        note(f"attention plot of line {number}: {target}")


def _name(path: str) -> str:
    return "<stdin>" if path == STDIN else path


if __name__ == "__main__":
    sys.exit(main())
