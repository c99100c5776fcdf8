"""Several trained models translating as one: at every step the average of their
log-probabilities, behind the same interface as a single model, so greedy, beam search and
sampling need no change.

    model = Ensemble([model_a, model_b])
    logits, state, attn = model.step(prev, state, encoded)   # the mean of the members' log-probabilities

The models must share their target vocabulary (and, for one source batch, their source one);
nmt.translator checks the tokenizers before building one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nmt.models.interface import Encoded


@dataclass
class EnsembleEncoded:
    """One Encoded per model, selected together as the search tiles and drops rows."""

    parts: list[Encoded]

    def index_select(self, index: Tensor) -> EnsembleEncoded:
        return EnsembleEncoded([part.index_select(index) for part in self.parts])


class Ensemble(nn.Module):
    def __init__(self, models: list[nn.Module]):
        super().__init__()
        sizes = {model.trg_vocab_size for model in models}
        if len(sizes) != 1:
            raise ValueError(f"the models of an ensemble must share their target vocabulary, not sizes {sorted(sizes)}")
        self.members = nn.ModuleList(models)
        self.trg_vocab_size = sizes.pop()

    def encode(self, src: Tensor, src_len: Tensor) -> EnsembleEncoded:
        return EnsembleEncoded([model.encode(src, src_len) for model in self.members])

    def init_state(self, encoded: EnsembleEncoded) -> list:
        return [model.init_state(part) for model, part in zip(self.members, encoded.parts)]

    def step(self, prev: Tensor, state: list, encoded: EnsembleEncoded, *, need_attention: bool = False):
        """The mean of the members' log-probabilities (batch, vocab), which the search's softmax
        renormalises; their attention averaged when every member gives it, else None."""
        log_probs, states, attentions = [], [], []
        for model, part_state, part in zip(self.members, state, encoded.parts):
            logits, part_state, attn = model.step(prev, part_state, part, need_attention=need_attention)
            log_probs.append(logits.float().log_softmax(dim=-1))
            states.append(part_state)
            attentions.append(attn)
        attention = None if any(a is None for a in attentions) else torch.stack(attentions).mean(dim=0)
        return torch.stack(log_probs).mean(dim=0), states, attention

    def keep_outputs(self, ids: Tensor) -> None:
        for model in self.members:
            model.keep_outputs(ids)
        self.trg_vocab_size = len(ids)

    def reorder(self, state: list, index: Tensor) -> list:
        return [model.reorder(part, index) for model, part in zip(self.members, state)]

    def forward(self, src: Tensor, src_len: Tensor, trg_in: Tensor, teacher_forcing: float = 1.0) -> Tensor:
        """Teacher forcing: the mean of the members' log-probabilities (batch, trg_len, vocab)."""
        outputs = [model(src, src_len, trg_in, teacher_forcing).float().log_softmax(dim=-1) for model in self.members]
        return torch.stack(outputs).mean(dim=0)
