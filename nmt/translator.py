"""Translator: a trained model and its tokenizers, translating lists of sentences in batches.

    from nmt import Translator
    t = Translator.from_checkpoint("checkpoints/eng-fra/best.pt")
    t.translate(["I am cold."], beam=5)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from nmt import search
from nmt.checkpoint import load_model
from nmt.data import make_batch


@dataclass
class Translation:
    source: str
    hypotheses: list[str]  # n-best, best first
    scores: list[float]


class Translator:
    def __init__(self, model, src_tok, tgt_tok, *, device: str | torch.device = "cpu", config=None):
        self.model = model.eval()
        self.src_tok = src_tok
        self.tgt_tok = tgt_tok
        self.device = torch.device(device)
        self.config = config

    @classmethod
    def from_checkpoint(cls, path, device: str | torch.device = "cpu") -> "Translator":
        model, src_tok, tgt_tok, config = load_model(path, device)
        return cls(model, src_tok, tgt_tok, device=device, config=config)

    def translate(self, lines: Sequence[str], **options) -> list[str]:
        return [t.hypotheses[0] for t in self.translate_n_best(lines, **options)]

    @torch.inference_mode()
    def translate_n_best(
        self,
        lines: Sequence[str],
        *,
        beam: int = 1,
        n_best: int = 1,
        length_penalty: float = 0.0,
        batch_size: int = 64,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        progress=None,
    ) -> list[Translation]:
        """One Translation per line, in input order. Lines are sorted by length internally so
        batches carry little padding; an empty line translates to an empty line."""
        ids = [self.src_tok.encode(line) for line in lines]
        results: list[Translation | None] = [Translation(line, [""] * n_best, [0.0] * n_best) if not x else None for line, x in zip(lines, ids)]
        order = sorted((i for i, x in enumerate(ids) if x), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = make_batch([(ids[i], []) for i in chunk])
            src, src_len = batch.src.to(self.device), batch.src_len.to(self.device)
            max_len = search.max_output_length(src_len, a=max_len_a, b=max_len_b)
            if beam == 1 and n_best == 1:
                hyps = search.greedy(self.model, src, src_len, max_len=max_len)
            else:
                hyps = search.beam(self.model, src, src_len, beam_size=beam, length_penalty=length_penalty, n_best=n_best, max_len=max_len)
            for row, i in enumerate(chunk):
                results[i] = Translation(lines[i], [self.tgt_tok.decode(t) for t in hyps.tokens[row]], list(hyps.scores[row]))
            if progress is not None:
                progress.update(len(chunk))
        return results
