"""Serve trained models over HTTP, with a page to try them: ``nmt serve --checkpoint A.pt [--checkpoint B.pt]``.

Each checkpoint serves the language pair it was trained on (an autoencoder's serves
reconstruction, source = target). Sentences from every request are translated together in
batches by one worker, as a file is by translate.py, so many clients sending one sentence each
are served at the speed of file translation. The API takes LibreTranslate's fields:

    curl -s localhost:8000/translate -H 'Content-Type: application/json' \\
         -d '{"q": "I am cold.", "source": "en", "target": "fr"}'

GET / is the page; GET /docs the API's reference; GET /metrics Prometheus' metrics.
Ctrl-C or SIGTERM stops taking requests, answers those already taken, and exits 0.
Needs the serve extra: pip install -e ".[serve]".
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from nmt.commands.cli import (
    Exit,
    OneLineErrorParser,
    UsageError,
    add_model_options,
    add_search_flags,
    load_translator,
    run,
    search_options,
)
from nmt.languages import same_language
from nmt.serve.settings import MAX_BEAM, Batching, Limits, Settings, search_threads


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--checkpoint",
        required=True,
        action="append",
        metavar="FILE",
        help="a checkpoint written by nmt train; give it again for each model served (one per language pair)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8000, help="the port to listen on; 0 picks a free one (default: 8000)"
    )
    add_model_options(
        parser, threads_default="one fewer than torch's choice, at least 1, leaving a core to HTTP", workers=False
    )
    add_search_flags(parser)
    service = parser.add_argument_group("service")
    for cls in (Batching, Limits):
        for f in dataclasses.fields(cls):
            service.add_argument(
                "--" + f.name.replace("_", "-"),
                type=type(f.default),
                default=f.default,
                metavar=f.metadata["metavar"],
                help=f"{f.metadata['help']} (default: {f.default})",
            )
    service.add_argument("--access-log", action="store_true", help="log every request on stderr")
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    return run(serve, args)


def searching_on(device: torch.device) -> str:
    """The banner's line on where the search runs: a GPU, or the CPU threads --threads gave it."""
    if device.type == "cpu":
        return f"searching on {torch.get_num_threads()} CPU thread(s) (--threads)"
    return f"searching on {device}"


def serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from nmt.serve.app import create_app
    except ImportError as e:
        raise UsageError(f'nmt serve needs the serve extra ({e.name} is missing): pip install -e ".[serve]"') from None
    settings = _settings(args)
    if args.threads is None:
        args.threads = search_threads(torch.get_num_threads())
    translators = {}
    for path in args.checkpoint:
        translator = load_translator(args, settings.search, path)
        pair = (translator.config.data.src, translator.config.data.trg)
        if any(same_language(pair[0], s) and same_language(pair[1], t) for s, t in translators):
            raise UsageError(f"{path} and another checkpoint both translate {pair[0]}->{pair[1]}; serve one per pair")
        translators[pair] = translator
        print(f"{pair[0]}->{pair[1]}: {path}", flush=True)
    print(searching_on(next(iter(translators.values())).device), flush=True)
    listening = _listen(args.host, args.port)
    host, port = listening.getsockname()[:2]
    print(f"serving at http://{host}:{port} (the page: /, the API: /docs)", flush=True)
    config = uvicorn.Config(
        create_app(translators, settings),
        log_level="info",
        access_log=args.access_log,
        timeout_graceful_shutdown=int(settings.limits.drain_seconds),
    )
    with _signals_end_the_server():
        uvicorn.Server(config).run(sockets=[listening])
    return Exit.OK


def _settings(args: argparse.Namespace) -> Settings:
    """The flags as Settings, each checked."""
    given = {cls: {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)} for cls in (Batching, Limits)}
    for name, value in (given[Batching] | given[Limits]).items():
        if value <= 0 and name != "max_wait_ms" or value < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be above 0, not {value:g}")
    search = search_options(args)
    if search.beam > MAX_BEAM:
        raise UsageError(f"--beam {search.beam}: the server searches with beams of at most {MAX_BEAM}")
    return Settings(
        search=search, limits=Limits(**given[Limits]), batching=Batching(**given[Batching]), batch_size=args.batch_size
    )


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, made here so that a taken port is one line, and port 0 can be told."""
    try:
        # IPPROTO_TCP named, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say
        # TCP, and with Nagle on, every answer on a kept-alive connection waits 40 ms for an ACK.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
        listening.listen(2048)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return listening


@contextmanager
def _signals_end_the_server() -> Iterator[None]:
    """uvicorn drains on SIGINT/SIGTERM, then raises the signal again for the handler it found
    when it started: with these installed, a drained server returns and the command exits 0."""
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
