"""Another commit's search against this one: one model, one process, rounds in turn, a ratio each.

    python benchmarks/search_ab.py --checkpoint S.pt --against ef9fac4 --quantize int8 --threads 1

Translates the first --sentences sources of the checkpoint's test split (or of --sources) with
this checkout's ``nmt/search.py`` and with the one of --against (read with ``git show`` and loaded
beside it), alternating which goes first, --rounds times; prints each round's sentences/s, the
ratio this / against per round, its median and quartiles, and whether the translations are the
same. On a machine that drifts as these do, take 30 rounds or more: six have misled.

Why not two whole commands: on a 2-core machine a command's speed moves by 15 to 20% from one run
to the next, more than most changes to the search give. Two searches taking turns on one loaded
model in one process share the model, the data and the machine's state of the moment, so what
differs between them is the search. The other commit's search must take this one's arguments
(``search(model, src, src_len, options, ...)``); a change to the model or the translator is not
measured here (``benchmarks/translate_speed.py``, or the peers' ``compare.py`` for whole commands).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import nmt.translator
from nmt.corpora import group_by_source, load_corpus
from nmt.translator import Translator

ROOT = Path(__file__).resolve().parent.parent


def search_of(commit: str):
    """The ``search`` function of ``nmt/search.py`` as it was at ``commit``."""
    source = subprocess.run(
        ["git", "show", f"{commit}:nmt/search.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(source)
    name = f"search_at_{commit}"
    spec = importlib.util.spec_from_file_location(name, f.name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    Path(f.name).unlink()
    return module.search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--against", required=True, help="the commit whose search is the baseline")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sentences", type=int, default=1000, help="how many sources to translate each round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--quantize", choices=["int8"])
    parser.add_argument("--sources", type=Path, help="a file of source sentences instead of the test split")
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's own)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    translator = Translator.from_checkpoint(args.checkpoint, quantize=args.quantize, workers=1)
    if args.sources:
        sources = args.sources.read_text(encoding="utf-8").splitlines()[: args.sentences]
    else:
        sources = [source for source, _ in group_by_source(load_corpus(translator.config.data).test)][: args.sentences]
    searches = {"this": nmt.translator.search, args.against: search_of(args.against)}

    def translate(name: str) -> tuple[float, list[str]]:
        nmt.translator.search = searches[name]  # the name the translator calls
        start = time.perf_counter()
        translations = translator.translate(sources, beam_size=args.beam, batch_size=args.batch_size)
        return len(sources) / (time.perf_counter() - start), translations

    for name in searches:  # warm-up, untimed
        translate(name)
    speeds = {name: [] for name in searches}
    outputs = {}
    for round_ in range(args.rounds):
        for name in searches if round_ % 2 == 0 else reversed(list(searches)):
            speed, outputs[name] = translate(name)
            speeds[name].append(speed)
    ratios = [this / other for this, other in zip(speeds["this"], speeds[args.against])]
    for name, values in speeds.items():
        print(f"{name:>10}  " + "  ".join(f"{v:6.1f}" for v in values) + "  sentences/s")
    print(f"{'ratio':>10}  " + "  ".join(f"{r:6.3f}" for r in ratios))
    same = "the same" if outputs["this"] == outputs[args.against] else "DIFFERENT"
    low, median, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    print(f"this / {args.against}: {median:.3f} at the median (quartiles {low:.3f} to {high:.3f}); translations {same}")


if __name__ == "__main__":
    main()
