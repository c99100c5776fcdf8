"""Translation with the output layer cut down to the tokens training ever asked for.

A joint vocabulary serves both languages, but the target side of the training data uses only
part of it: for French in the default model's training split, 5,720 of the 8,000 pieces. The
others were never a target, so all the model learned about them is to give them no
probability. A checkpoint lists the target-side ids (``output_ids``); for translation the output
layer keeps only their rows (``cut_rows``), and the search never spends a multiply on the rest.

    model = Shortlisted(model, output_ids)                 # search over len(output_ids) outputs
    logits, state, attn = model.step(prev, state, encoded)  # prev and outputs: positions in the list

The search works in positions of the list; ``Shortlisted`` turns a position back into its token
id where the model reads it (the previous token), and the translator does the same for the
outputs. The specials come first, at their own ids (PAD, SOS, EOS and UNK are 0 to 3), so the
search's EOS, PAD and SOS mean the same in both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from nmt.specials import SPECIALS


def target_side_ids(targets: Iterable[Sequence[int]]) -> list[int]:
    """The sorted ids of every token in ``targets``, the specials first."""
    seen = set(range(len(SPECIALS)))
    for target in targets:
        seen.update(target)
    return sorted(seen)


def cut_rows(layer: nn.Linear, ids: Tensor) -> nn.Linear:
    """A new output layer of the rows ``ids`` of ``layer``: a copy, so that a tied embedding keeps
    every token, as the decoder still reads any of them."""
    cut = nn.Linear(layer.in_features, len(ids), bias=layer.bias is not None, device=ids.device)
    with torch.no_grad():
        cut.weight.copy_(layer.weight[ids])
        if layer.bias is not None:
            cut.bias.copy_(layer.bias[ids])
    return cut


class Shortlisted(nn.Module):
    """``model`` (a single model or an Ensemble), its output layer cut to ``output_ids``."""

    def __init__(self, model: nn.Module, output_ids: Sequence[int]):
        super().__init__()
        ids = torch.tensor(output_ids, device=next(model.parameters()).device)
        if ids[: len(SPECIALS)].tolist() != list(range(len(SPECIALS))) or not bool((ids.diff() > 0).all()):
            raise ValueError("output_ids must be sorted and start with the specials")
        model.keep_outputs(ids)
        self.model = model
        self.register_buffer("output_ids", ids)
        self.trg_vocab_size = len(output_ids)

    def encode(self, src: Tensor, src_len: Tensor):
        return self.model.encode(src, src_len)

    def init_state(self, encoded):
        return self.model.init_state(encoded)

    def step(self, prev: Tensor, state, encoded, *, need_attention: bool = False):
        """prev (batch,) positions in the list -> logits (batch, len(output_ids)), as the model's step."""
        return self.model.step(self.output_ids[prev], state, encoded, need_attention=need_attention)

    def reorder(self, state, index: Tensor):
        return self.model.reorder(state, index)

    def forward(self, src: Tensor, src_len: Tensor, trg_in: Tensor, teacher_forcing: float = 1.0) -> Tensor:
        """Teacher forcing, in positions of the list too: trg_in (batch, trg_len) -> logits
        (batch, trg_len, len(output_ids))."""
        return self.model(src, src_len, self.output_ids[trg_in], teacher_forcing)
