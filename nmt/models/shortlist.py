"""The output layer cut down to the tokens training ever asked for.

A joint vocabulary serves both languages, but the target side of the training data uses only
part of it: for French in the default model's training split, 5,720 of the 8,000 pieces. The
others are never a target, so all a model could learn about them is to give them no
probability. So by default (``--output-vocab trained``) training scores only the listed rows
(``list_outputs``: read from the full layer at every call, as a tied output layer is the
embedding matrix, which keeps every token), as a separate target vocabulary would, and spends
no multiply on the rest; OpenNMT-py's target vocabulary is the same 5,720 pieces. A checkpoint
lists the target-side ids (``output_ids``); for translation the output layer keeps only their
rows (``cut_rows``, a copy, so that no step gathers them again).

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
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.specials import SPECIALS, UNK


def target_side_ids(targets: Iterable[Sequence[int]]) -> list[int]:
    """The sorted ids of every token in ``targets``, the specials first."""
    seen = set(range(len(SPECIALS)))
    for target in targets:
        seen.update(target)
    return sorted(seen)


def positions_in_list(output_ids: Sequence[int], vocab_size: int) -> Tensor:
    """(vocab_size,) the position of each id in ``output_ids``; an id not listed gets UNK's, the
    token a model over the list would have to output for it (a validation target training never
    had)."""
    positions = torch.full((vocab_size,), UNK, dtype=torch.long)
    positions[torch.tensor(output_ids)] = torch.arange(len(output_ids))
    return positions


def listed_logits(layer: nn.Linear, features: Tensor, rows: Tensor | None) -> Tensor:
    """``layer(features)``, or only its outputs ``rows`` (..., len(rows)): those rows of the full
    weight are gathered at every call, so backward updates the full (possibly tied) matrix."""
    if rows is None:
        return layer(features)
    return F.linear(features, layer.weight[rows], None if layer.bias is None else layer.bias[rows])


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
    """``model`` (a single model or an Ensemble), its output layer cut to ``output_ids``; with
    ``cut=False`` a model that already scores only those (training's, after ``list_outputs``),
    left as it is."""

    def __init__(self, model: nn.Module, output_ids: Sequence[int], *, cut: bool = True):
        super().__init__()
        ids = torch.tensor(output_ids, device=next(model.parameters()).device)
        if ids[: len(SPECIALS)].tolist() != list(range(len(SPECIALS))) or not bool((ids.diff() > 0).all()):
            raise ValueError("output_ids must be sorted and start with the specials")
        if cut:
            model.keep_outputs(ids)
        elif model.trg_vocab_size != len(ids):
            raise ValueError(f"the model scores {model.trg_vocab_size} outputs, not the {len(ids)} listed")
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
