"""Where translation spends its time: torch.profiler's table of one search over test sentences.

    python benchmarks/profile_search.py --checkpoint checkpoints/run/best.pt --beam 5 [--quantize int8]

Translates the first --sentences source sentences of the checkpoint's own test split at
--batch-size once untimed (to warm up), once timed (sentences/s, printed) and once under the
profiler, whose operators are printed by their own CPU time. Profile before changing the search:
it says whether a step's time is the model's arithmetic or the loop around it.
"""

from __future__ import annotations

import argparse
import time

from torch.profiler import ProfilerActivity, profile

from nmt.corpora import group_by_source, load_corpus
from nmt.translator import Translator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sentences", type=int, default=640, help="how many test sources to translate")
    parser.add_argument("--quantize", choices=["int8"])
    parser.add_argument("--rows", type=int, default=25, help="operators shown")
    args = parser.parse_args()

    translator = Translator.from_checkpoint(args.checkpoint, quantize=args.quantize)
    sources = [source for source, _ in group_by_source(load_corpus(translator.config.data).test)][: args.sentences]

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
