"""The model family: an RNN encoder-decoder (encoder, bridge, attention, decoder, cells) and a
Transformer, both behind the contract in interface.py that search and training rely on."""

from __future__ import annotations

from torch import nn

from nmt.config import ModelConfig


def build_model(cfg: ModelConfig, src_tok, trg_tok) -> nn.Module:
    """The model ``cfg`` describes, sized for these tokenizers (one object twice: a joint vocabulary)."""
    if cfg.arch == "transformer":
        from nmt.models.transformer import Transformer

        return Transformer(
            cfg, src_vocab_size=len(src_tok), trg_vocab_size=len(trg_tok), shared_vocab=src_tok is trg_tok
        )
    from nmt.models.seq2seq import RNNSeq2Seq

    return RNNSeq2Seq(cfg, src_vocab_size=len(src_tok), trg_vocab_size=len(trg_tok), shared_vocab=src_tok is trg_tok)
