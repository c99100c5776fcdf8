"""Where translation spends its time: torch.profiler's table of one search over test sentences.

    python benchmarks/profile_search.py --checkpoint checkpoints/run/best.pt --beam 5 [--quantize int8]
    python benchmarks/profile_search.py --checkpoint S.pt --sources test.src --threads 1   # one worker's view

Translates the first --sentences source sentences of the checkpoint's own test split (or of
--sources, one per line) at --batch-size once untimed (to warm up), once timed (sentences/s,
printed) and once under the profiler, whose operators are printed by their own CPU time. The
model's steps are marked: the row ``model.step`` has their whole time as its CPU total (the rest
of a search is the search's own: log-softmax, choosing candidates, bookkeeping), and as its self
CPU the time between the step's operators (Python, and the profiler's own cost). Profile before
changing the search: it says whether a step's time is the model's arithmetic or the loop around
it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from nmt.corpora import group_by_source, load_corpus
from nmt.translator import Translator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sentences", type=int, default=640, help="how many test sources to translate")
    parser.add_argument("--quantize", choices=["int8"])
    parser.add_argument("--sources", type=Path, help="a file of source sentences instead of the test split")
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's own)")
    parser.add_argument("--rows", type=int, default=25, help="operators shown")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    translator = Translator.from_checkpoint(args.checkpoint, quantize=args.quantize)
    if args.sources:
        sources = args.sources.read_text(encoding="utf-8").splitlines()[: args.sentences]
    else:
        sources = [source for source, _ in group_by_source(load_corpus(translator.config.data).test)][: args.sentences]
    step = translator.model.step

    def marked_step(*inputs, **options):
        with record_function("model.step"):
            return step(*inputs, **options)

    translator.model.step = marked_step

    def translate():
        translator.translate(sources, beam_size=args.beam, batch_size=args.batch_size)

    translate()
    start = time.perf_counter()
    translate()
    print(f"{len(sources) / (time.perf_counter() - start):.1f} sentences/s")
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        translate()
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
