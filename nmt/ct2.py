"""nmt's Transformer as a CTranslate2 model, for its C++ search (an optional extra: ``pip install
'nmt[ctranslate2]'``).

    nmt export best.pt OUT_DIR --format ctranslate2 [--quantize int8]
    translator = Ct2Translator(OUT_DIR)              # ctranslate2.Translator + the model's tokenizers
    translator.translate(["Hello."], beam_size=5)

CTranslate2's ``TransformerSpec`` holds every Transformer nmt trains: pre- or post-norm layers, a
final LayerNorm on each pre-norm stack, embeddings scaled by sqrt(d_model), rotary positions in
both stacks' self-attention (NeoX layout: dimension i turns with i + d_head / 2, as
``RotaryPositions`` does) or an added table (sinusoids or learned, stored as the table itself),
tied embeddings (stored twice: the format has no aliases), and an output list (the target
vocabulary is the listed tokens, the decoder's embeddings their rows). The RNN and ensembles have
no CTranslate2 counterpart and are refused.

One thing differs by design: CTranslate2 ranks finished beam hypotheses by log-probability /
length ** alpha, nmt by GNMT's log-probability / ((5 + length) / 6) ** alpha, so beam search may
pick another of the hypotheses both find. Greedy search has no penalty and is the same model's.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from nmt.checkpoint import CheckpointError
from nmt.config import ModelConfig
from nmt.model_folder import read_tokenizer, write_tokenizer
from nmt.models.shortlist import Shortlisted
from nmt.models.transformer import Transformer
from nmt.search import SearchOptions
from nmt.specials import EOS, SOS, SPECIALS, UNK
from nmt.tokenizers import tokenizer_from_dict
from nmt.translator import Translator

TOKENIZERS = "nmt_tokenizers.json"  # beside CTranslate2's own files: which tokenizer files are the model's
QUANTIZATIONS = ("int8",)
MISSING = "CTranslate2 export needs the ctranslate2 package: pip install 'nmt[ctranslate2]'"


def _ctranslate2():
    try:
        import ctranslate2
    except ImportError:
        raise ImportError(MISSING) from None
    return ctranslate2


def export_ctranslate2(checkpoint: str | Path, out_dir: Path, *, quantize: str | None = None) -> Path:
    """Write the Transformer of ``checkpoint`` (a file or an nmt model folder) as a CTranslate2
    model folder at ``out_dir``, which must not exist yet, with the model's tokenizers beside it.
    ``quantize="int8"`` stores the weights in int8 (CTranslate2's own scheme)."""
    if out_dir.exists():
        raise CheckpointError(f"{out_dir} exists already; export into a new folder")
    if quantize not in (None, *QUANTIZATIONS):
        raise ValueError(f"unknown quantization {quantize!r}: the choice is {', '.join(QUANTIZATIONS)}")
    ctranslate2 = _ctranslate2()
    translator = Translator.from_checkpoint(checkpoint)
    model, output_ids = translator.model, None
    if isinstance(model, Shortlisted):
        model, output_ids = model.model, model.output_ids.tolist()
    if not isinstance(model, Transformer):
        raise CheckpointError(
            f"{checkpoint}: a {translator.config.model.arch} model; CTranslate2 export takes the Transformer only "
            "(CTranslate2 has no LSTM encoder-decoder with attention)"
        )
    output_ids = output_ids or list(range(len(translator.trg_tok)))
    spec = transformer_spec(ctranslate2, model, translator.config.model, output_ids)
    spec.register_source_vocabulary([translator.src_tok.id_to_token(i) for i in range(len(translator.src_tok))])
    spec.register_target_vocabulary([translator.trg_tok.id_to_token(i) for i in output_ids])
    spec.validate()
    spec.optimize(quantization=quantize)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        spec.save(str(staging))
        entries = {
            "source": write_tokenizer(translator.src_tok.to_dict(), staging, "source"),
            "target": write_tokenizer(translator.trg_tok.to_dict(), staging, "target"),
        }
        languages = {"source": translator.config.data.src, "target": translator.config.data.trg}
        info = {"tokenizers": entries, "languages": languages, "quantize": quantize}
        (staging / TOKENIZERS).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        staging.chmod(0o755)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def transformer_spec(ctranslate2, model: Transformer, cfg: ModelConfig, output_ids: Sequence[int]):
    """The ``TransformerSpec`` of ``model`` with its weights; the decoder's vocabulary is ``output_ids``."""
    from ctranslate2.specs import transformer_spec as ts

    pre_norm = cfg.norm == "pre"
    rotary = {"rotary_dim": 0, "rotary_interleave": False} if cfg.positions == "rotary" else {}
    encoder = ts.TransformerEncoderSpec(cfg.enc_layers, cfg.heads, pre_norm=pre_norm, **rotary)
    decoder = ts.TransformerDecoderSpec(cfg.dec_layers, cfg.heads, pre_norm=pre_norm, **rotary)
    spec = ts.TransformerSpec(encoder, decoder)
    spec.config.layer_norm_epsilon = model.encoder_layers[0].ff_residual.norm.eps
    spec.config.unk_token, spec.config.bos_token, spec.config.eos_token = SPECIALS[UNK], SPECIALS[SOS], SPECIALS[EOS]
    spec.config.decoder_start_token = SPECIALS[SOS]  # sources get neither: add_source_bos / _eos stay False
    ids = torch.tensor(output_ids)

    encoder.embeddings[0].weight = _array(model.src_embed.weight)
    decoder.embeddings.weight = _array(model.trg_embed.weight[ids])
    for stack, positions in ((encoder, model.src_positions), (decoder, model.trg_positions)):
        table = positions.sinusoids if positions.sinusoids is not None else positions.table
        if table is not None:  # rotary positions have no table: the self-attention turns instead
            stack.position_encodings.encodings = _array(table if isinstance(table, torch.Tensor) else table.weight)
    if pre_norm:
        _norm(encoder.layer_norm, model.encoder_norm)
        _norm(decoder.layer_norm, model.decoder_norm)
    decoder.projection.weight = _array(model.generator.weight)  # cut to the output list by Shortlisted

    for spec_layer, layer in zip(encoder.layer, model.encoder_layers):
        _self_attention(spec_layer.self_attention, layer.self_attn, layer.self_attn_residual.norm)
        _feed_forward(spec_layer.ffn, layer.ff, layer.ff_residual.norm)
    for spec_layer, layer in zip(decoder.layer, model.decoder_layers):
        _self_attention(spec_layer.self_attention, layer.self_attn, layer.self_attn_residual.norm)
        cross = layer.cross_attn
        _norm(spec_layer.attention.layer_norm, layer.cross_attn_residual.norm)
        _linear(spec_layer.attention.linear[0], cross.query)
        _linear(spec_layer.attention.linear[1], cross.key, cross.value)  # keys and values in one matrix
        _linear(spec_layer.attention.linear[2], cross.out)
        _feed_forward(spec_layer.ffn, layer.ff, layer.ff_residual.norm)
    return spec


def _array(tensor: torch.Tensor):
    return tensor.detach().float().contiguous().numpy()


def _norm(spec, norm) -> None:
    spec.gamma, spec.beta = _array(norm.weight), _array(norm.bias)


def _linear(spec, *layers) -> None:
    """One CTranslate2 linear layer from ``layers`` stacked by output rows (queries, keys, values)."""
    spec.weight = _array(torch.cat([layer.weight for layer in layers]))
    if layers[0].bias is not None:
        spec.bias = _array(torch.cat([layer.bias for layer in layers]))


def _self_attention(spec, attention, norm) -> None:
    _norm(spec.layer_norm, norm)
    _linear(spec.linear[0], attention.query, attention.key, attention.value)
    _linear(spec.linear[1], attention.out)


def _feed_forward(spec, ff, norm) -> None:
    _norm(spec.layer_norm, norm)
    _linear(spec.linear_0, ff.up)
    _linear(spec.linear_1, ff.down)


class Ct2Translator:
    """A CTranslate2 model folder written by ``export_ctranslate2``, translating text as
    ``nmt.translator.Translator`` does: the model's tokenizers around ``ctranslate2.Translator``."""

    def __init__(self, folder: str | Path, *, compute_type: str = "default", threads: int = 0):
        folder = Path(folder)
        try:
            info = json.loads((folder / TOKENIZERS).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CheckpointError(f"{folder}: not a CTranslate2 folder of nmt (no {TOKENIZERS})") from None
        self.src_tok = tokenizer_from_dict(read_tokenizer(info["tokenizers"]["source"], folder))
        self.trg_tok = tokenizer_from_dict(read_tokenizer(info["tokenizers"]["target"], folder))
        self.languages = info["languages"]
        self.token_ids = {self.trg_tok.id_to_token(i): i for i in range(len(self.trg_tok))}
        self.translator = _ctranslate2().Translator(
            str(folder), device="cpu", compute_type=compute_type, intra_threads=threads
        )

    def translate(
        self, lines: Sequence[str], *, beam_size: int = 5, length_penalty: float = 1.0, max_batch_size: int = 64
    ) -> list[str]:
        """One translation per line. CTranslate2 takes one output limit per call: nmt's default
        limit (SearchOptions.output_limits) of the call's longest source."""
        sources = [self.src_tok.tokens(line) for line in lines]
        longest = max((len(tokens) for tokens in sources), default=0)
        limit = int(SearchOptions().output_limits(torch.tensor([longest]))[0])
        results = self.translator.translate_batch(
            sources,
            beam_size=beam_size,
            length_penalty=length_penalty,
            max_batch_size=max_batch_size,
            batch_type="examples",
            max_decoding_length=limit,
        )
        return [self.trg_tok.decode([self.token_ids[t] for t in r.hypotheses[0]]) for r in results]
