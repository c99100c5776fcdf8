"""Translation speed of a checkpoint on its own test split: sentences/s for greedy and beam 5 at
batch sizes 1 and 64, and BLEU / chrF for each search. For a Transformer, also greedy decoding
without the key/value cache (the whole prefix re-run at every step) as a baseline, in the same run.

    python benchmarks/decode_speed.py --checkpoint checkpoints/NAME/best.pt [--sentences 2500]
"""

import argparse
import time
from functools import partial

import torch

from nmt.checkpoint import load_model
from nmt.corpora import group_by_source, load_corpus
from nmt.data import make_batch
from nmt.metrics import score
from nmt.search import max_output_length
from nmt.specials import EOS, SOS
from nmt.translator import Translator


@torch.inference_mode()
def greedy_without_cache(model, src, src_len, *, max_len: int) -> list[list[int]]:
    """Greedy search that re-runs the teacher-forced decoder over the whole prefix at every step."""
    encoded = model.encode(src, src_len)
    out = torch.full((src.size(0), 1), SOS, dtype=torch.long)
    for _ in range(max_len):
        logits, _ = model.decode(out, encoded)
        out = torch.cat([out, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
        if (out == EOS).any(dim=1).all():
            break
    return [row[1 : row.index(EOS)] if EOS in row else row[1:] for row in out.tolist()]


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--sentences", type=int, default=2500, help="test sentences for batch 64")
    parser.add_argument("--sentences-batch-1", type=int, default=300, help="test sentences for batch 1")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model, src_tok, trg_tok, config = load_model(args.checkpoint)
    translator = Translator(model, src_tok, trg_tok, config=config)
    groups = group_by_source(load_corpus(config.data).test)[: args.sentences]
    sources, refs = [s for s, _ in groups], [r for _, r in groups]
    print(f"{args.checkpoint}: {config.model.arch}, {len(sources)} test sentences, {torch.get_num_threads()} threads")

    for beam in (1, 5):
        for batch_size, n in ((64, len(sources)), (1, min(args.sentences_batch_1, len(sources)))):
            out, seconds = timed(partial(translator.translate, sources[:n], beam_size=beam, batch_size=batch_size))
            quality = score(out, refs[:n])
            print(
                f"{'greedy' if beam == 1 else f'beam {beam}':>7}  batch {batch_size:>2}: {n / seconds:7.1f} sentences/s"
                f"  (BLEU {quality.bleu:.2f}, chrF {quality.chrf:.2f} on {n})"
            )

    if config.model.arch == "transformer":
        n = min(args.sentences_batch_1 * 2, len(sources))
        ids = sorted((src_tok.encode(s) for s in sources[:n]), key=len)
        batches = [make_batch([(x, []) for x in ids[i : i + 64]]) for i in range(0, n, 64)]

        def run_uncached():
            for b in batches:
                greedy_without_cache(model, b.src, b.src_len, max_len=int(max_output_length(b.src_len).max()))

        _, cached = timed(lambda: translator.translate(sources[:n], beam_size=1, batch_size=64))
        _, uncached = timed(run_uncached)
        print(
            f"greedy batch 64 on {n}: with the cache {n / cached:.1f} sentences/s, without {n / uncached:.1f}"
            f" ({uncached / cached:.1f}x)"
        )


if __name__ == "__main__":
    main()
