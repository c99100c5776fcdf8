"""Padding waste (padded tokens / all tokens, both sides) of length-bucketed batches on the real
corpus, against batches of the same sentences in random order.

    python benchmarks/padding_waste.py [--corpus corpora/fra-eng.zip] [--batch-tokens 4000]
"""

import argparse
import random

from nmt.config import DataConfig
from nmt.corpora import load_corpus
from nmt.data import bucket, encode_pairs, padding_waste
from nmt.tokenizers import build_tokenizers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="eng-fra")
    parser.add_argument("--tokenizer", default="spm", choices=["spm", "word"])
    parser.add_argument("--batch-tokens", type=int, default=4000)
    args = parser.parse_args()

    cfg = DataConfig(corpus=args.corpus, tokenizer=args.tokenizer)
    train = load_corpus(cfg).train
    src_tok, trg_tok = build_tokenizers(train, cfg)
    examples = encode_pairs(train, src_tok, trg_tok, max_len=cfg.max_len)

    bucketed = bucket(examples, batch_tokens=args.batch_tokens, seed=0)
    order = list(range(len(examples)))
    random.Random(0).shuffle(order)
    per_batch = len(examples) // len(bucketed)
    unbucketed = [order[i : i + per_batch] for i in range(0, len(order), per_batch)]
    print(
        f"{len(examples)} training pairs, {args.tokenizer} tokens, "
        f"{len(bucketed)} batches of <= {args.batch_tokens} tokens"
    )
    print(f"padding waste, bucketed:          {padding_waste(bucketed, examples):.1%}")
    print(f"padding waste, random order:      {padding_waste(unbucketed, examples):.1%} (same number of batches)")


if __name__ == "__main__":
    main()
