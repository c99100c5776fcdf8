"""What ``nmt serve`` can be told: its limits and its batching, each with its default and help
once (the command's flags are made from these fields). No web framework is imported here, so
``nmt serve --help`` works without the serve extra."""

from __future__ import annotations

from dataclasses import dataclass, field

from nmt.search import SearchOptions
from nmt.translator import BATCH_SIZE

MAX_BEAM = 16  # what a request may ask: a wider beam costs a client little to ask and the server much to search


def search_threads(torch_default: int) -> int:
    """The CPU threads the search gets when ``--threads`` is not given: one fewer than torch
    would take, at least one. The HTTP side (the event loop reading requests and writing
    answers) needs a core too; with every core in the search's thread pool, one client's
    requests on a 2-core CPU were answered at half to three quarters of the rate, though a
    saturated RNN server did more (docs/experiments.rst, "Serving")."""
    return max(1, torch_default - 1)


def setting(default, help: str, metavar: str = "N"):
    return field(default=default, metadata={"help": help, "metavar": metavar})


@dataclass(frozen=True)
class Limits:
    """What one request may ask, and how long the service waits."""

    max_chars: int = setting(5000, "characters in one request, all its texts together")
    max_sentences: int = setting(128, "texts in one request")
    max_body_bytes: int = setting(1 << 20, "bytes in one request body")
    timeout: float = setting(30.0, "the longest a request waits for its translation, then 504", "SECONDS")
    drain_seconds: float = setting(30.0, "at shutdown, the longest spent answering what was asked", "SECONDS")


@dataclass(frozen=True)
class Batching:
    """How sentences of different requests are searched together."""

    max_wait_ms: float = setting(5.0, "how long a sentence waits for others to share its batch when few wait", "MS")
    max_queue: int = setting(1024, "sentences waiting at most; a request that would pass it gets 503 and Retry-After")


@dataclass(frozen=True)
class Settings:
    search: SearchOptions = field(default_factory=SearchOptions)  # a request may change its beam and n-best
    limits: Limits = field(default_factory=Limits)
    batching: Batching = field(default_factory=Batching)
    batch_size: int = BATCH_SIZE
