"""The RNN model: encoder -> bridge -> decoder behind the interface in interface.py."""

from __future__ import annotations

import dataclasses

from torch import Tensor, nn

from nmt.config import ModelConfig
from nmt.models.bridge import Bridge
from nmt.models.decoder import RNNDecoder, RNNState
from nmt.models.encoder import RNNEncoder
from nmt.models.interface import Encoded


class RNNSeq2Seq(nn.Module):
    def __init__(self, cfg: ModelConfig, *, src_vocab_size: int, trg_vocab_size: int, shared_vocab: bool = False):
        super().__init__()
        self.trg_vocab_size = trg_vocab_size
        self.encoder = RNNEncoder(
            src_vocab_size,
            emb_size=cfg.emb_size,
            hidden=cfg.enc_hidden,
            cell=cfg.cell,
            layers=cfg.layers,
            bidirectional=cfg.bidirectional,
            dropout=cfg.dropout,
            impl=cfg.rnn_impl,
        )
        self.bridge = Bridge(
            cfg.bridge, enc_size=self.encoder.output_size, dec_hidden=cfg.dec_hidden, n_states=self.encoder.n_states
        )
        self.decoder = RNNDecoder(
            trg_vocab_size,
            emb_size=cfg.emb_size,
            hidden=cfg.dec_hidden,
            enc_size=self.encoder.output_size,
            cell=cfg.cell,
            layers=cfg.layers,
            dropout=cfg.dropout,
            attention=cfg.attention == "bahdanau",
            impl=cfg.rnn_impl,
            tie_embeddings=cfg.tie_embeddings,
        )
        if cfg.tie_embeddings and shared_vocab:  # one vocabulary: one embedding matrix for all three uses
            self.encoder.embed = self.decoder.embed

    def encode(self, src: Tensor, src_len: Tensor) -> Encoded:
        encoded = self.encoder(src, src_len)
        if self.decoder.attention is None:
            return encoded
        return dataclasses.replace(encoded, keys=self.decoder.attention.project_keys(encoded.outputs))

    def init_state(self, encoded: Encoded) -> RNNState:
        return self.decoder.init_state(self.bridge(encoded.final))

    def step(self, prev: Tensor, state: RNNState, encoded: Encoded, *, need_attention: bool = False):
        # the attention weights are a by-product of every step: they are given whether asked for or not
        return self.decoder.step(prev, state, encoded)

    def keep_outputs(self, ids: Tensor) -> None:
        self.decoder.keep_outputs(ids)
        self.trg_vocab_size = len(ids)

    def list_outputs(self, ids: Tensor) -> None:
        self.decoder.list_outputs(ids)
        self.trg_vocab_size = len(ids)

    def reorder(self, state: RNNState, index: Tensor) -> RNNState:
        return self.decoder.reorder(state, index)

    def forward(self, src: Tensor, src_len: Tensor, trg_in: Tensor, teacher_forcing: float = 1.0) -> Tensor:
        encoded = self.encode(src, src_len)
        return self.decoder(trg_in, self.init_state(encoded), encoded, teacher_forcing)
