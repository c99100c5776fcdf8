"""Transformer encoder-decoder (Vaswani et al., 2017) behind the same interface as the RNN model.

    model = Transformer(cfg, src_vocab_size=V, trg_vocab_size=V, shared_vocab=True)
    logits = model(src, src_len, trg_in)             # teacher forcing, every position at once
    encoded = model.encode(src, src_len)             # search: read the source and project the
    state = model.init_state(encoded)                # cross-attention keys / values once,
    logits, state, attn = model.step(prev, state, encoded)  # then one token at a time

Attention runs on ``F.scaled_dot_product_attention``, so fused kernels are used where the hardware
has them; the decoder's self-attention passes ``is_causal`` rather than a mask, which lets the
flash kernel run. Layers are pre-norm by default (``cfg.norm == "pre"``: trains without warmup
and needs a final LayerNorm on each stack) or post-norm as in the paper.

Token order comes from sinusoids or a learned table added to the embeddings, or, with
``cfg.positions == "rotary"`` (Su et al., 2021, RoFormer), from the self-attention queries and
keys rotated by their positions, so that a query meets a key at their offset rather than at two
absolute positions: positions that short training sentences rarely reach look like the ones they
do. Cross-attention has no positions in any variant: source and target positions do not align.

Target padding needs no mask of its own: it sits at the end of ``trg_in``, so the causal mask
already hides it from every real position, and the loss ignores the outputs at padded positions.

The whole model is one file, as in nanoGPT's model.py, though it runs past 350 lines: attention,
layers, positions and the decoding state are read together, top to bottom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.config import ModelConfig
from nmt.models.dropout import Dropout, dropout
from nmt.models.interface import Encoded
from nmt.models.shortlist import cut_rows, listed_logits
from nmt.specials import PAD


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention over ``heads`` subspaces of ``d_model``.

    Keys and values are projected by ``keys_values`` apart from the attention itself, so the
    decoder can cache them: its self-attention appends one position per step, and its
    cross-attention projects the encoder output once per sentence. With ``rotary``, queries and
    keys are rotated by their positions, the first of which is ``start`` (a cached step's).
    """

    def __init__(self, d_model: int, heads: int, dropout: float, rotary: RotaryPositions | None = None):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not divisible by heads {heads}")
        self.heads = heads
        self.d_head = d_model // heads
        self.dropout = dropout
        self.rotary = rotary
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def split_heads(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.heads, self.d_head).transpose(1, 2)  # (batch, heads, len, d_head)

    def rotate(self, x: Tensor, start: int) -> Tensor:
        """Queries or keys (batch, heads, len, d_head) at positions start on, rotated with ``rotary``."""
        return x if self.rotary is None else self.rotary(x, start)

    def keys_values(self, x: Tensor, start: int = 0) -> tuple[Tensor, Tensor]:
        """(batch, len, d_model) at positions start on -> keys and values, each (batch, heads, len, d_head)."""
        return self.rotate(self.split_heads(self.key(x)), start), self.split_heads(self.value(x))

    def forward(
        self,
        x: Tensor,
        keys: Tensor,
        values: Tensor,
        *,
        mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
        start: int = 0,
    ) -> tuple[Tensor, Tensor | None]:
        """Queries from x (batch, q_len, d_model), at positions ``start`` on, attend over keys /
        values (batch, heads, k_len, d_head).

        ``mask`` broadcasts to (batch, heads, q_len, k_len), True where attending is allowed; no
        row may be all False. Returns (batch, q_len, d_model) and, with ``need_weights``, the
        attention weights averaged over heads (batch, q_len, k_len), else None. SDPA does not
        return weights, so ``need_weights`` computes the attention explicitly; it is meant for
        cross-attention (a mask, not ``is_causal``).
        """
        batch, q_len, d_model = x.shape
        q = self.rotate(self.split_heads(self.query(x)), start)  # (batch, heads, q_len, d_head)
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            assert not is_causal, "need_weights is for cross-attention; pass a mask"
            scores = q @ keys.transpose(-2, -1) / math.sqrt(self.d_head)  # (batch, heads, q_len, k_len)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            probs = scores.softmax(dim=-1)
            context = dropout(probs, p, self.training) @ values  # (batch, heads, q_len, d_head)
            weights = probs.mean(dim=1)  # (batch, q_len, k_len)
        else:
            context = F.scaled_dot_product_attention(
                q, keys, values, attn_mask=mask, dropout_p=p, is_causal=is_causal
            )  # (batch, heads, q_len, d_head)
        context = context.transpose(1, 2).reshape(batch, q_len, d_model)  # heads side by side again
        return self.out(context), weights


class FeedForward(nn.Module):
    """The position-wise two-layer network: d_model -> ff_size -> d_model."""

    def __init__(self, d_model: int, ff_size: int, dropout: float):
        super().__init__()
        self.up = nn.Linear(d_model, ff_size)
        self.down = nn.Linear(ff_size, d_model)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(self.dropout(F.relu(self.up(x))))


class Residual(nn.Module):
    """``x + dropout(sublayer(...))`` with its LayerNorm, placed by the norm style.

    Pre-norm normalises the sublayer's input and leaves the residual path untouched (stable
    without warmup); post-norm normalises the sum, as in the original paper. A layer calls
    ``sublayer_input(x)`` to get what its sublayer reads, then ``residual(x, y)`` with the result.
    """

    def __init__(self, d_model: int, dropout: float, pre_norm: bool):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.dropout = Dropout(dropout)
        self.pre_norm = pre_norm

    def sublayer_input(self, x: Tensor) -> Tensor:
        return self.norm(x) if self.pre_norm else x

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        x = x + self.dropout(y)
        return x if self.pre_norm else self.norm(x)


class EncoderLayer(nn.Module):
    """Self-attention over the source, then the feed-forward network, each with a residual."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        pre_norm = cfg.norm == "pre"
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.heads, cfg.dropout, RotaryPositions.of(cfg))
        self.self_attn_residual = Residual(cfg.d_model, cfg.dropout, pre_norm)
        self.ff = FeedForward(cfg.d_model, cfg.ff_size, cfg.dropout)
        self.ff_residual = Residual(cfg.d_model, cfg.dropout, pre_norm)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (batch, src_len, d_model); mask (batch, 1, 1, src_len), True at keys to attend to."""
        h = self.self_attn_residual.sublayer_input(x)
        y, _ = self.self_attn(h, *self.self_attn.keys_values(h), mask=mask)
        x = self.self_attn_residual(x, y)
        return self.ff_residual(x, self.ff(self.ff_residual.sublayer_input(x)))


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention over the encoder output, then the feed-forward
    network, each with a residual."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        pre_norm = cfg.norm == "pre"
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.heads, cfg.dropout, RotaryPositions.of(cfg))
        self.self_attn_residual = Residual(cfg.d_model, cfg.dropout, pre_norm)
        self.cross_attn = MultiHeadAttention(cfg.d_model, cfg.heads, cfg.dropout)
        self.cross_attn_residual = Residual(cfg.d_model, cfg.dropout, pre_norm)
        self.ff = FeedForward(cfg.d_model, cfg.ff_size, cfg.dropout)
        self.ff_residual = Residual(cfg.d_model, cfg.dropout, pre_norm)

    def forward(
        self,
        x: Tensor,
        cross_kv: tuple[Tensor, Tensor],
        src_mask: Tensor,
        *,
        cache: KVCache | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: x is the whole target (batch, trg_len, d_model), attended causally.
        Incremental: x is one new position (batch, 1, d_model); its self-attention keys / values
        are appended to ``cache``, which holds the earlier ones, and it sees them all.

        cross_kv: the cross-attention keys / values of the encoder output (sources, heads,
        src_len, d_head), where batch is a multiple of sources and ``batch // sources``
        consecutive rows of x read each source; src_mask (sources, 1, 1, src_len). Returns the
        new x and, with ``need_weights``, the cross-attention weights (batch, len, src_len).
        """
        h = self.self_attn_residual.sublayer_input(x)
        start = 0 if cache is None else cache.length  # the position of x's first row
        keys, values = self.self_attn.keys_values(h, start)  # (batch, heads, len, d_head)
        if cache is not None:
            assert x.size(1) == 1, "incremental decoding takes one position at a time"
            keys, values = cache.append(keys, values)  # (batch, heads, t+1, d_head)
        y, _ = self.self_attn(h, keys, values, is_causal=cache is None, start=start)
        x = self.self_attn_residual(x, y)

        h = self.cross_attn_residual.sublayer_input(x)
        # Several rows may read one source (the hypotheses of a sentence in beam search): each
        # source's rows become its queries, so its keys and values are not copied per row.
        queries = h.reshape(cross_kv[0].size(0), -1, h.size(-1))  # (sources, rows // sources * len, d_model)
        y, weights = self.cross_attn(queries, *cross_kv, mask=src_mask, need_weights=need_weights)
        x = self.cross_attn_residual(x, y.view_as(h))
        if weights is not None:
            weights = weights.reshape(*h.shape[:2], -1)  # (rows, len, src_len)

        x = self.ff_residual(x, self.ff(self.ff_residual.sublayer_input(x)))
        return x, weights


def frequencies(size: int) -> Tensor:
    """(size / 2,) angular frequencies 10000 ** (-2i / size): the sinusoids' and the rotations' alike."""
    return torch.exp(torch.arange(0, size, 2) * (-math.log(10000.0) / size))


class PositionalEncoding(nn.Module):
    """Adds position information to embeddings: fixed sinusoids or a learned table; with rotary
    positions nothing (they enter in self-attention), but the length limit still holds.

    The sinusoids are a buffer left out of the state dict: they are recomputed at load, so
    checkpoints stay small and max_positions can change between runs.
    """

    def __init__(self, d_model: int, max_positions: int, kind: str):  # kind: ModelConfig.positions
        super().__init__()
        self.max_positions = max_positions
        self.table = None
        self.register_buffer("sinusoids", None, persistent=False)
        if kind == "learned":
            # nn.Embedding's N(0, 1) start is kept: the same scale as the sqrt(d_model)-scaled
            # token embeddings, so positions are neither drowned out nor dominant at the start.
            self.table = nn.Embedding(max_positions, d_model)
        elif kind == "sinusoidal":
            position = torch.arange(max_positions).unsqueeze(1)  # (max_positions, 1)
            frequency = frequencies(d_model)
            table = torch.zeros(max_positions, d_model)
            table[:, 0::2] = torch.sin(position * frequency)
            table[:, 1::2] = torch.cos(position * frequency[: d_model // 2])
            self.register_buffer("sinusoids", table, persistent=False)

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """x (batch, len, d_model) holds positions start .. start + len - 1."""
        end = start + x.size(1)
        if end > self.max_positions:
            raise ValueError(f"sequence of {end} positions is longer than max_positions {self.max_positions}")
        if self.sinusoids is not None:
            return x + self.sinusoids[start:end]
        if self.table is not None:
            return x + self.table(torch.arange(start, end, device=x.device))
        return x


class RotaryPositions(nn.Module):
    """Rotates each pair of a head's dimensions (i, i + d_head / 2) by the angle position x
    10000 ** (-2i / d_head), so the dot product of a query at position m and a key at n depends on
    m - n alone. A buffer, like the sinusoids: no weights, nothing in the state dict."""

    def __init__(self, d_head: int, max_positions: int):
        super().__init__()
        if d_head % 2:
            raise ValueError(f"rotary positions need an even head size, not {d_head}")
        angle = torch.arange(max_positions)[:, None] * frequencies(d_head)  # (max_positions, d_head/2)
        angle = torch.cat([angle, angle], dim=1)  # (max_positions, d_head): pair i's angle at i and i + d_head/2
        self.register_buffer("cos", angle.cos(), persistent=False)
        self.register_buffer("sin", angle.sin(), persistent=False)

    @classmethod
    def of(cls, cfg: ModelConfig) -> RotaryPositions | None:
        """The rotation of a self-attention layer of ``cfg``, None where positions are added instead."""
        return cls(cfg.d_model // cfg.heads, cfg.max_positions) if cfg.positions == "rotary" else None

    def forward(self, x: Tensor, start: int) -> Tensor:
        """x (batch, heads, len, d_head) at positions start .. start + len - 1 -> the same, rotated."""
        end = start + x.size(2)
        cos, sin = self.cos[start:end].to(x.dtype), self.sin[start:end].to(x.dtype)  # (len, d_head)
        first, second = x.chunk(2, dim=-1)
        return x * cos + torch.cat([-second, first], dim=-1) * sin


class KVCache:
    """One decoder layer's self-attention keys and values of the positions decoded so far.

    They live in buffers with room to spare, (batch, heads, capacity, d_head), of which the
    first ``length`` positions are filled: a step writes its position in place, where
    concatenating would copy the whole cache at every step. A full buffer doubles, so the
    copying over a whole output stays linear in its length.
    """

    def __init__(self, keys: Tensor, values: Tensor, length: int = 0):
        self.keys, self.values, self.length = keys, values, length

    @classmethod
    def empty(cls, like: Tensor, *, heads: int, d_head: int, capacity: int = 16) -> KVCache:
        """A cache with room for ``capacity`` positions, for the batch and dtype of ``like`` (batch, ...)."""
        buffer = like.new_zeros(like.size(0), heads, capacity, d_head)
        return cls(buffer, buffer.clone())

    def append(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Add new positions (batch, heads, new, d_head) in place -> keys and values of every
        position so far, (batch, heads, length, d_head) views of the buffers."""
        end = self.length + keys.size(2)
        if end > self.keys.size(2):
            room = max(end, 2 * self.keys.size(2))
            self.keys, self.values = (F.pad(b, (0, 0, 0, room - b.size(2))) for b in (self.keys, self.values))
        self.keys[:, :, self.length : end] = keys
        self.values[:, :, self.length : end] = values
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def index_select(self, index: Tensor) -> KVCache:
        return KVCache(self.keys.index_select(0, index), self.values.index_select(0, index), self.length)


@dataclass
class DecoderState:
    """What incremental decoding carries from step to step: each layer's self-attention cache.

    The cross-attention keys / values are not here but in ``Encoded.keys``: they are fixed for a
    sentence, so they travel with the encoder output, which the search selects only when
    sentences leave the batch, not with the state, which it reorders at every step.
    """

    caches: list[KVCache]  # per layer, one position longer after every step

    @property
    def length(self) -> int:
        """Target positions decoded so far, which is also the next token's position."""
        return self.caches[0].length

    def index_select(self, index: Tensor) -> DecoderState:
        return DecoderState([cache.index_select(index) for cache in self.caches])


def attention_mask(mask: Tensor) -> Tensor:
    """(batch, src_len) True at real tokens -> (batch, 1, 1, src_len) for every head and query.

    A row with no real token at all (an empty source) attends to its padding instead: a fully
    masked row would make the softmax NaN, and some fused kernels do not guard against it.
    """
    mask = mask | ~mask.any(dim=1, keepdim=True)
    return mask[:, None, None, :]


class Transformer(nn.Module):
    """Encoder-decoder Transformer with the interface of nmt.models.interface.Seq2SeqModel.

    Token embeddings are scaled by sqrt(d_model). With ``cfg.tie_embeddings`` the output
    projection is the target embedding matrix, and with ``shared_vocab`` (one tokenizer for
    both sides) the source embedding is that same matrix too.
    """

    def __init__(self, cfg: ModelConfig, *, src_vocab_size: int, trg_vocab_size: int, shared_vocab: bool):
        super().__init__()
        if shared_vocab and src_vocab_size != trg_vocab_size:
            raise ValueError("a shared vocabulary needs src_vocab_size == trg_vocab_size")
        self.trg_vocab_size = trg_vocab_size
        self.heads = cfg.heads
        self.d_head = cfg.d_model // cfg.heads
        self.scale = math.sqrt(cfg.d_model)

        self.src_embed = nn.Embedding(src_vocab_size, cfg.d_model)
        self.trg_embed = nn.Embedding(trg_vocab_size, cfg.d_model)
        self.src_positions = PositionalEncoding(cfg.d_model, cfg.max_positions, cfg.positions)
        self.trg_positions = PositionalEncoding(cfg.d_model, cfg.max_positions, cfg.positions)
        self.dropout = Dropout(cfg.dropout)
        self.encoder_layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.enc_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.dec_layers))
        # Pre-norm leaves the residual stream unnormalised, so each stack ends with a LayerNorm;
        # post-norm layers already end with one.
        self.encoder_norm = nn.LayerNorm(cfg.d_model) if cfg.norm == "pre" else nn.Identity()
        self.decoder_norm = nn.LayerNorm(cfg.d_model) if cfg.norm == "pre" else nn.Identity()
        self.generator = nn.Linear(cfg.d_model, trg_vocab_size, bias=False)

        self._init_weights(cfg.d_model)
        if cfg.tie_embeddings:
            self.generator.weight = self.trg_embed.weight
            if shared_vocab:
                self.src_embed = self.trg_embed
        # the output rows logits are restricted to while training (list_outputs); not in the state dict
        self.register_buffer("output_rows", None, persistent=False)

    def _init_weights(self, d_model: int) -> None:
        """Xavier-uniform for every matrix (biases zero); token embeddings N(0, d_model**-0.5).

        That embedding scale suits both of the embedding's jobs when tied: times sqrt(d_model)
        it gives unit-variance inputs, like the sinusoids, and as the output projection of a
        layer-normed state it gives logits of about unit variance.
        """
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for embed in (self.src_embed, self.trg_embed):
            nn.init.normal_(embed.weight, mean=0.0, std=d_model**-0.5)

    def encode(self, src: Tensor, src_len: Tensor) -> Encoded:
        """src (batch, src_len) ids, src_len (batch,) -> outputs (batch, src_len, d_model), and as
        ``keys`` every decoder layer's cross-attention keys and values of them, projected once per
        sentence: (batch, dec_layers, 2, heads, src_len, d_head)."""
        mask = src != PAD  # (batch, src_len); from the lengths, it would wait for their copy to the GPU
        attend = attention_mask(mask)
        x = self.dropout(self.src_positions(self.src_embed(src) * self.scale))  # (batch, src_len, d_model)
        for layer in self.encoder_layers:
            x = layer(x, attend)
        outputs = self.encoder_norm(x)
        cross = [torch.stack(layer.cross_attn.keys_values(outputs), dim=1) for layer in self.decoder_layers]
        return Encoded(outputs=outputs, mask=mask, keys=torch.stack(cross, dim=1))

    def decode(self, trg_in: Tensor, encoded: Encoded, *, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: trg_in (batch, trg_len) -> logits (batch, trg_len, vocab) and, with
        ``need_weights``, the last layer's cross-attention averaged over heads (batch, trg_len, src_len)."""
        attend = attention_mask(encoded.mask)
        x = self.dropout(self.trg_positions(self.trg_embed(trg_in) * self.scale))  # (batch, trg_len, d_model)
        weights = None
        for i, layer in enumerate(self.decoder_layers):
            last = i == len(self.decoder_layers) - 1
            cross_kv = encoded.keys[:, i].unbind(1)  # keys, values (batch, heads, src_len, d_head)
            x, weights = layer(x, cross_kv, attend, need_weights=need_weights and last)
        return listed_logits(self.generator, self.decoder_norm(x), self.output_rows), weights

    def forward(self, src: Tensor, src_len: Tensor, trg_in: Tensor, teacher_forcing: float = 1.0) -> Tensor:
        """Teacher forcing: trg_in (batch, trg_len) starting with SOS -> logits (batch, trg_len, vocab)."""
        if teacher_forcing < 1.0:
            raise ValueError(
                "the Transformer trains with full teacher forcing only (its positions are computed in parallel)"
            )
        logits, _ = self.decode(trg_in, self.encode(src, src_len))
        return logits

    def forward_attention(self, src: Tensor, src_len: Tensor, trg_in: Tensor) -> tuple[Tensor, Tensor]:
        """``forward`` plus the last decoder layer's cross-attention (batch, trg_len, src_len), for plots."""
        return self.decode(trg_in, self.encode(src, src_len), need_weights=True)

    def init_state(self, encoded: Encoded) -> DecoderState:
        """An empty self-attention cache for every layer."""
        return DecoderState(
            [KVCache.empty(encoded.outputs, heads=self.heads, d_head=self.d_head) for _ in self.decoder_layers]
        )

    def step(
        self, prev: Tensor, state: DecoderState, encoded: Encoded, *, need_attention: bool = False
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """prev (batch,) -> logits (batch, vocab), the state one position longer (updated in
        place), and with ``need_attention`` the last layer's cross-attention averaged over heads
        (batch, src_len), else None: the weights cost the fused attention kernel, so only
        plots ask for them.

        Only the new position is computed: its keys / values are appended to each layer's cache
        and its query attends over the whole cache, so no causal mask is needed.
        """
        attend = attention_mask(encoded.mask)
        x = self.trg_embed(prev).unsqueeze(1) * self.scale  # (batch, 1, d_model)
        x = self.dropout(self.trg_positions(x, start=state.length))
        weights = None
        for i, layer in enumerate(self.decoder_layers):
            last = i == len(self.decoder_layers) - 1
            cross_kv = encoded.keys[:, i].unbind(1)
            x, weights = layer(x, cross_kv, attend, cache=state.caches[i], need_weights=need_attention and last)
        logits = listed_logits(self.generator, self.decoder_norm(x), self.output_rows).squeeze(1)  # (batch, vocab)
        return logits, state, None if weights is None else weights.squeeze(1)

    def keep_outputs(self, ids: Tensor) -> None:
        """Cut the output layer to the rows ``ids`` (nmt.models.shortlist)."""
        self.generator = cut_rows(self.generator, ids)
        self.trg_vocab_size = len(ids)

    def list_outputs(self, ids: Tensor) -> None:
        """Score only the rows ``ids`` of the output layer from now on, read from the whole layer
        (nmt.models.shortlist): logits are over positions in ``ids``."""
        self.output_rows = ids
        self.trg_vocab_size = len(ids)

    def reorder(self, state: DecoderState, index: Tensor) -> DecoderState:
        """The state whose row i is row ``index[i]``, caches and cross keys / values alike."""
        return state.index_select(index)
