"""What the programs share: exit statuses, one-line errors, the device, and for translate and
evaluate the search options and loading a checkpoint into a Translator."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import IntEnum

import torch

from nmt.checkpoint import CheckpointError
from nmt.commands.textio import TextFileError
from nmt.config import ConfigError
from nmt.devices import pick_device
from nmt.languages import LanguageError, check_bleu_tokenizer
from nmt.plot import PlotError
from nmt.search import DEFAULT_BEAM, DEFAULT_LENGTH_PENALTY, SearchOptions
from nmt.text import CorpusError
from nmt.translator import BATCH_SIZE, Translator

EXAMPLES_OF_UNKNOWN = 5


class Exit(IntEnum):
    """The exit status of every program."""

    OK = 0
    ERROR = 1  # bad input or a failure: corpus, checkpoint, text file, training, disk
    USAGE = 2  # bad options, as for argparse's own errors
    INTERRUPTED = 130  # Ctrl-C or SIGTERM, as a shell reports SIGINT
    READER_GONE = 141  # what stdout was piped to has closed it (| head), as a shell reports SIGPIPE


class UsageError(ValueError):
    """Options that no run can use: Exit.USAGE (as is the library's ConfigError)."""


class OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own prints the whole usage first, 40 lines for train_nmt.py
        self.exit(Exit.USAGE, f"{self.prog}: error: {message} (see --help)\n")


def add_search_options(parser: argparse.ArgumentParser) -> None:
    """--checkpoint (one model, or an ensemble), how to run it, and how to search."""
    parser.add_argument(
        "--checkpoint",
        required=True,
        nargs="+",
        action="extend",
        metavar="FILE",
        help="a checkpoint written by train_nmt.py, e.g. checkpoints/NAME/best.pt; several translate as an "
        "ensemble that averages their log-probabilities at each step (they must share their vocabulary)",
    )
    add_model_options(parser)
    add_search_flags(parser)


def add_bleu_tokenize(parser: argparse.ArgumentParser, *, default: str = "") -> None:
    default = default or (
        "the one the checkpoint's target language takes: zh for Chinese, ja-mecab/ko-mecab when installed, else 13a"
    )
    parser.add_argument(
        "--bleu-tokenize",
        metavar="NAME",
        help=f"sacrebleu's tokenizer for BLEU: 13a, intl, zh, ja-mecab, ko-mecab, char ... (default: {default})",
    )


def bleu_tokenize(args: argparse.Namespace, default: Callable[[], str]) -> str:
    """--bleu-tokenize, checked, or ``default()``: the tokenizer the target language takes."""
    try:
        return check_bleu_tokenizer(args.bleu_tokenize) if args.bleu_tokenize else default()
    except LanguageError as e:
        raise UsageError(str(e)) from None


def add_model_options(
    parser: argparse.ArgumentParser, *, threads_default: str = "torch's choice", workers: bool = True
) -> None:
    """How to run a loaded model: quantized, in which precision, over which outputs, where; with
    ``workers``, in how many processes (a server's job is one batch: it takes no --workers)."""
    parser.add_argument(
        "--quantize",
        choices=["int8"],
        help="int8 weights in the linear and recurrent layers, on the CPU: faster, for a little BLEU "
        "(docs/experiments.rst has the figures); a line's translation may then depend on its batch",
    )
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        default="fp32",
        help="run the model under autocast in bf16 or fp16 (fp16: GPU only); the search adds up "
        "log-probabilities in fp32 (default: fp32)",
    )
    parser.add_argument(
        "--output-vocab",
        choices=["trained", "full"],
        default="trained",
        help="trained: the output layer keeps only the tokens seen on the target side in training, "
        "which the checkpoint lists (faster; older checkpoints list none and keep all); full: every token, "
        "for models trained with --output-vocab full or before that option (default: trained)",
    )
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:1, or auto: cuda when there is one (default: auto)"
    )
    parser.add_argument(
        "--threads", type=int, metavar="N", help=f"CPU threads for the model's arithmetic (default: {threads_default})"
    )
    if workers:
        parser.add_argument(
            "--workers",
            type=int,
            metavar="N",
            help="on the CPU, processes searching batches side by side, one thread each; the translations are "
            "the same (default: one per thread of --threads, no more than there are batches)",
        )


def add_search_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of SearchOptions, and the sentences searched at a time."""
    search = parser.add_argument_group("search")
    # Every default below is SearchOptions' (nmt/search.py): None here means "not given".
    search.add_argument(
        "--beam",
        dest="beam_size",
        type=int,
        metavar="K",
        help=f"beam size; 1 is greedy search (default: {DEFAULT_BEAM}, or the n-best if larger)",
    )
    search.add_argument(
        "--length-penalty",
        type=float,
        metavar="ALPHA",
        help="GNMT length normalisation: beam hypotheses rank by logprob / ((5 + length) / 6) ** ALPHA; "
        f"0 ranks by the raw log-probability (default: {DEFAULT_LENGTH_PENALTY} for a beam, none for greedy "
        "search; with --beam 1 a penalty given here runs a beam of 1, which honours it)",
    )
    search.add_argument(
        "--batch-size", type=int, default=BATCH_SIZE, metavar="N", help=f"sentences per batch (default: {BATCH_SIZE})"
    )
    search.add_argument(
        "--max-len",
        type=int,
        metavar="N",
        help="a fixed limit on output tokens, the end-of-sentence token included (replaces the three below)",
    )
    search.add_argument(
        "--max-len-a",
        type=float,
        metavar="A",
        help=f"without --max-len, the limit is A * source tokens + B (default: {SearchOptions.max_len_a})",
    )
    search.add_argument("--max-len-b", type=float, metavar="B", help=f"(default: {SearchOptions.max_len_b:g})")
    search.add_argument(
        "--max-len-cap",
        type=int,
        metavar="N",
        help="without --max-len, no output has more than N tokens however long its source, so that one "
        f"long or unending line cannot stall a file or a server (default: {SearchOptions.max_len_cap})",
    )


SEARCH_FIELDS = [f.name for f in dataclasses.fields(SearchOptions)]


def search_options(args: argparse.Namespace, **fixed) -> SearchOptions:
    """The SearchOptions of the search flags given (and of ``fixed`` ones the program sets itself)."""
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, not {args.batch_size}")
    given = {name: value for name in SEARCH_FIELDS if (value := getattr(args, name, None)) is not None}
    try:
        return SearchOptions(**given | fixed)
    except ValueError as e:
        raise UsageError(str(e)) from None


def load_translator(
    args: argparse.Namespace, options: SearchOptions, checkpoint: str | list[str] | None = None
) -> Translator:
    """The Translator of ``checkpoint`` (by default --checkpoint: one model or an ensemble) as the
    model options say, once ``options`` are known to suit its model."""
    device = pick_device(args.device)
    if args.quantize and device.type != "cpu":
        raise UsageError(f"--quantize {args.quantize} runs on the CPU only; add --device cpu")
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be at least 1, not {args.threads}")
        torch.set_num_threads(args.threads)
    workers = getattr(args, "workers", 1)  # None: one per thread
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    try:
        translator = Translator.from_checkpoint(
            args.checkpoint if checkpoint is None else checkpoint,
            device,
            quantize=args.quantize,
            precision=args.precision,
            output_vocab=args.output_vocab,
            workers=workers,
        )
    except CheckpointError:
        raise
    except ValueError as e:  # an ensemble of models with different vocabularies
        raise UsageError(str(e)) from None
    try:
        translator.check_options(options)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return translator


def checkpoint_names(args: argparse.Namespace) -> str:
    """The --checkpoint files as messages name them: one, or an ensemble's joined by " + "."""
    return " + ".join(args.checkpoint)


def report_unknown_words(words: Iterable[str]) -> None:
    """One note on stderr for all the source words the vocabulary lacks (each once in ``words``)."""
    unknown = list(dict.fromkeys(words))
    if unknown:
        examples = ", ".join(unknown[:EXAMPLES_OF_UNKNOWN])
        plural = "s" if len(unknown) > 1 else ""
        note(f"{len(unknown)} unknown word{plural} (read as <unk>), e.g. {examples}")


def report_cut(cut: int, total: int) -> None:
    """One note on stderr counting the best translations the output length limit stopped."""
    if cut:
        note(
            f"{cut} of {total} translations stopped at the output length limit, without an "
            "end of sentence (--max-len, or --max-len-a / --max-len-b, set the limit)"
        )


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def run(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``command(args)``, with expected failures as one line on stderr and an exit status."""
    try:
        with _warnings_to_stderr(), _terminate_as_interrupt():
            return command(args)
    except (UsageError, ConfigError) as e:
        return fail(e, Exit.USAGE)
    except (CheckpointError, CorpusError, PlotError, TextFileError) as e:
        return fail(e, Exit.ERROR)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)  # the main output files are atomic; plots already drawn stay
        return Exit.INTERRUPTED
    except BrokenPipeError:  # nothing reads the output any more: stop, quietly, as cat or grep would
        return Exit.READER_GONE


def fail(error: Exception, status: Exit) -> Exit:
    """``error`` as one line on stderr, and the status to exit with."""
    print(f"error: {error}", file=sys.stderr)
    return status


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a service manager, a container stopping) ends a command as Ctrl-C does:
    Python's default for it is to die on the spot, which leaves an output still being written as a
    hidden temporary file beside its target. Raised as KeyboardInterrupt instead, it unwinds the
    writes, which remove their temporary files, and exits Exit.INTERRUPTED. Commands that stop in
    their own way on SIGTERM (training, the server) install their own handler inside this one."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """The package's warnings (a source cut to the model's positions...) as "warning: ..." lines
    on the stderr of this moment, which is also what tests capture."""
    logger = logging.getLogger("nmt")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
