"""``nmt COMMAND ...`` (or ``python -m nmt COMMAND ...``): every program of the toolkit under one name."""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

# Each command is the module nmt.commands.NAME, whose main(argv, prog=...) runs it.
COMMANDS = {
    "train": "train a model (also train_nmt.py)",
    "translate": "translate text with a trained model (also translate.py)",
    "evaluate": "translate a held-out split of the model's corpus and score it",
    "compare": "are two systems' scores different? BLEU and chrF with confidence intervals and p-values",
    "average": "average the weights of saved checkpoints",
    "distill": "a teacher translates its training data: the corpus for a smaller, faster student",
    "export": "write a checkpoint as a model folder to share: safetensors weights, tokenizers, a model card",
    "plot": "draw the learning curves of training runs",
    "fetch": "download a corpus into corpora/",
    "serve": "an HTTP translation service with a page to try it (needs the serve extra)",
}


def usage(name: str) -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: {name} COMMAND [OPTIONS]   ({name} COMMAND --help for the command's options)", "", "commands:"]
    lines += [f"  {command:<{width}}  {what}" for command, what in COMMANDS.items()]
    return "\n".join(lines) + "\n"


def invoked_as() -> str:
    """How the user started this program, for usage lines and printed commands: nmt, or python -m nmt."""
    name = Path(sys.argv[0]).name
    return "python -m nmt" if name == "__main__.py" else name


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or invoked_as()
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(prog), end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, options = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"{prog}: error: unknown command {command!r}; the commands are {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    # Imported on demand: translating should not pay for importing the training code, and back.
    return importlib.import_module(f"nmt.commands.{command}").main(options, prog=f"{prog} {command}")


def program(command: str | None = None) -> int:
    """Run as a process of its own: the ``nmt`` console script and ``python -m nmt`` (the command
    named on the command line), or translate.py and train_nmt.py (``command``).

    The command's module, torch's included, is imported with the garbage collector paused: the
    import makes about 170,000 objects and little garbage, and every collection it would trigger
    scans them all again. They live as long as the process, so they are then frozen out of later
    collections (gc.freeze). Only a process of its own may freeze: ``main`` called from other
    Python code does not, as the caller's objects alive then would never be collected.
    """
    name = command or (sys.argv[1] if len(sys.argv) > 1 else None)
    if name in COMMANDS:
        gc.disable()
        try:
            importlib.import_module(f"nmt.commands.{name}")
        finally:
            gc.freeze()
            gc.enable()
    return importlib.import_module(f"nmt.commands.{command}").main() if command else main()


def run(command: str | None = None) -> NoReturn:
    """``program`` as the whole life of a process: the ``nmt`` console script, ``python -m nmt``,
    translate.py and train_nmt.py.

    Once the command has returned, this runs the exit handlers (logging's, multiprocessing's),
    flushes the standard streams and ends the process (os._exit), skipping the interpreter's
    teardown, which frees torch's objects one by one: about 0.2 s with nothing left to do, a
    noticeable part of a short translation (docs/experiments.rst, "Start and end of a command,
    and the first step of a beam"). An exception the command does not handle ends the process
    the usual way, with its traceback.
    """
    try:
        code = program(command)
    except SystemExit as exit:
        code = exit.code
    if code is not None and not isinstance(code, int):  # sys.exit's message
        print(code, file=sys.stderr)
        code = 1
    status = code or 0
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except OSError as e:  # what the command left in the buffer could not be written
        # here, not at the top: cli imports torch, which every command has imported already
        from nmt.commands.cli import Exit, fail
        from nmt.commands.textio import cannot_write_stdout

        if isinstance(e, BrokenPipeError):  # the reader has gone (nmt translate | head): quietly
            status = status or Exit.READER_GONE
        else:  # a full disk, say; a command that failed has said why already
            status = status or fail(cannot_write_stdout(e), Exit.ERROR)
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    run()
