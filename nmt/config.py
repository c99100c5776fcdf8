"""Configuration: one dataclass per concern, each option's allowed values beside its field.

All three sections are saved inside every checkpoint (as plain dicts), so a checkpoint alone is
enough to rebuild the tokenizers and the model and to resume training. Every field is also a
``train_nmt.py`` flag (``flag()`` spells it), with its help text and limits taken from here: a
``Literal[...]`` type lists the values a string option takes, ``option(at_least=...)`` bounds a
number. A config is checked when it is made (``__post_init__``), so no code downstream, model
or tokenizer, needs to check an option again.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from nmt.languages import LanguageError, bleu_tokenizer, check_bleu_tokenizer, check_code, same_language
from nmt.specials import SPECIALS


def option(
    default: Any,
    help: str = "",
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    flag: str | None = None,
):
    """A config field with its help text, its bounds and, when it differs from --NAME, its flag."""
    return field(default=default, metadata={"help": help, "at_least": at_least, "at_most": at_most, "flag": flag})


class ConfigError(ValueError):
    """An option out of its range; the message names the flag, as the user wrote it."""


@dataclass
class DataConfig:
    corpus: str = option(
        "auto",
        "a manythings.org archive or tab file (fra-eng.zip, deu.txt), a tab file with two columns, parallel "
        "files as 'data/train.{lang}' (data/train.en + data/train.fr for --src en --tgt fr), a manythings.org "
        "pair such as 'deu-eng' or 'eng-fra' (downloaded into corpora/ when missing), 'demo' (generated "
        "English/French, offline) or 'auto' (eng-fra if available, else demo)",
    )
    src: str = option("en", "source language: an ISO 639-1 or 639-3 code (de or deu)")
    trg: str = option("fr", "target language (the same as --src: autoencoder)", flag="--tgt")
    columns: str = option(
        "",
        "the languages of a tab file's two columns, e.g. 'en,de' (default: English first in a manythings.org "
        "archive or its xxx.txt, the --src language first in any other tab file)",
    )
    valid_files: tuple = option(
        (),
        "SRC TRG: parallel files used as they are for validation, instead of a part of the corpus",
    )
    test_files: tuple = option(
        (),
        "SRC TRG: parallel files used as they are as the test set (a standard test set), instead of a part "
        "of the corpus; training pairs whose source is in them are dropped",
    )
    character_coverage: float = option(
        0.0,
        "SentencePiece's share of characters that get a piece (0: by script, 1.0 for alphabets, 0.9995 for "
        "Chinese, Japanese and Korean)",
        at_least=0,
        at_most=1,
    )
    bleu_tokenize: str = option(
        "auto",
        "sacrebleu's tokenizer for validation and test BLEU (auto: by target language, zh for Chinese, "
        "ja-mecab/ko-mecab for Japanese/Korean when installed, else 13a)",
    )
    tokenizer: Literal["word", "spm"] = option("spm", "word (Lang) or spm (SentencePiece)")
    vocab_size: int = option(8000, "SentencePiece pieces, or the cap on a word vocabulary (0: none)", at_least=0)
    spm_model_type: Literal["unigram", "bpe"] = option("unigram")
    spm_alpha: float = option(
        0.0,
        "subword sampling (Kudo 2018): each epoch segments the training sentences anew, sampled with this "
        "smoothing (unigram; for bpe, the BPE-dropout rate), e.g. 0.1; validation and translation never "
        "sample (0: off)",
        at_least=0,
        at_most=1,
    )
    spm_nbest: int = option(64, "with --spm-alpha, sample among this many best segmentations (-1: all)", at_least=-1)
    joint_vocab: bool = option(True, "one tokenizer for both sides")
    min_count: int = option(1, "word tokenizer only: rarer words become <unk>", at_least=1)
    max_len: int = option(50, "longest training sentence, in tokens, either side", at_least=1)
    min_len: int = option(1, "shortest training sentence, in words", at_least=0)
    prefix_filter: bool = option(False, "keep only 'i am', 'he is'... sources, as in the PyTorch tutorial")
    dedup: bool = option(True, "drop repeated pairs")
    valid_size: int = option(2000, "source sentences held out for validation", at_least=1)
    test_size: int = option(2500, "source sentences held out for testing, with all their references", at_least=0)
    skip_bad_lines: bool = option(False, "skip corpus lines that cannot be read, with a count, instead of stopping")
    seed: int = option(1234, "the seed of the train / valid / test split", flag="--data-seed")

    @property
    def autoencoder(self) -> bool:
        return same_language(self.src, self.trg)

    def bleu_tokenizer(self) -> str:
        """sacrebleu's BLEU tokenizer for this target: --bleu-tokenize, or the target language's."""
        return self.bleu_tokenize if self.bleu_tokenize != "auto" else bleu_tokenizer(self.trg)

    @property
    def column_langs(self) -> tuple[str, ...]:
        """--columns as a tuple of codes, () when not given."""
        return tuple(code.strip() for code in self.columns.split(",")) if self.columns else ()

    def __post_init__(self):
        for name in ("valid_files", "test_files"):  # a JSON or TOML list, or a checkpoint's
            setattr(self, name, tuple(getattr(self, name)))
        _check_fields(self, "data")
        try:
            check_code(self.src, "--src")
            check_code(self.trg, "--tgt")
            for code in self.column_langs:
                check_code(code, "--columns")
            check_bleu_tokenizer(self.bleu_tokenize)
        except LanguageError as e:
            raise ConfigError(str(e)) from None
        if self.columns and len(self.column_langs) != 2:
            raise ConfigError(f"--columns {self.columns!r}: give the two columns' languages, e.g. 'en,de'")
        for name, files in (("--valid-files", self.valid_files), ("--test-files", self.test_files)):
            if files and (len(files) != 2 or not all(isinstance(f, str) and f for f in files)):
                raise ConfigError(f"{name} takes two file names, source and target, not {list(files)!r}")
        if self.spm_alpha > 0 and self.tokenizer != "spm":
            raise ConfigError(
                f"--spm-alpha {self.spm_alpha} samples SentencePiece segmentations: it needs --tokenizer spm"
            )
        if 0 < self.vocab_size <= len(SPECIALS):
            raise ConfigError(
                f"--vocab-size {self.vocab_size}: must be 0 (no cap) or above {len(SPECIALS)}, the special tokens"
            )
        if self.min_len > self.max_len:
            raise ConfigError(f"--min-len {self.min_len} is above --max-len {self.max_len}")


@dataclass
class ModelConfig:
    arch: Literal["rnn", "transformer"] = option("rnn")
    emb_size: int = option(256, at_least=1)
    dropout: float = option(0.1, at_least=0, at_most=1)
    tie_embeddings: bool = option(
        True, "the decoder's output layer is its embedding matrix; with a joint vocabulary, the encoder's embedding too"
    )
    output_vocab: Literal["trained", "full"] = option(
        "trained",
        "trained: the output layer scores only the tokens the training targets use (with a joint vocabulary, "
        "the target language's part; as a separate target vocabulary would), which saves their share of its "
        "work; full: every token",
    )
    # RNN
    cell: Literal["lstm", "gru", "rnn"] = option("lstm")
    rnn_impl: Literal["torch", "scratch"] = option(
        "torch", "torch (fused kernels) or scratch (nmt.models.cells, for reading)"
    )
    enc_hidden: int = option(128, "per direction", at_least=1)
    dec_hidden: int = option(256, at_least=1)
    bidirectional: bool = option(True)
    layers: int = option(
        1,
        "RNN layers; for the Transformer, encoder and decoder layers unless --enc-layers/--dec-layers say otherwise",
        at_least=1,
    )
    attention: Literal["bahdanau", "none"] = option("bahdanau")
    bridge: Literal["linear", "identity", "zero"] = option("linear")
    # Transformer. Narrow, for a CPU, where a short run gains more from more updates than from
    # width (docs/experiments.rst, "A narrower Transformer"); recipes/transformer-gpu.toml is wider.
    d_model: int = option(128, at_least=1)
    heads: int = option(4, at_least=1)
    ff_size: int = option(512, at_least=1)
    enc_layers: int = option(3, at_least=1)
    dec_layers: int = option(3, at_least=1)
    norm: Literal["pre", "post"] = option("pre")
    # Rotary: attention sees offsets, common at any length, where sinusoids give positions long
    # sentences rarely reach (docs/experiments.rst, "Rotary positions close the long-sentence gap").
    positions: Literal["sinusoidal", "learned", "rotary"] = option(
        "rotary",
        "the Transformer's token order: sinusoids or a learned table added to the embeddings, or "
        "rotary: self-attention queries and keys rotated by position, so attention sees offsets",
    )
    max_positions: int = option(1024, at_least=1)

    def __post_init__(self):
        _check_fields(self, "model")
        if self.arch == "transformer" and self.d_model % self.heads:
            raise ConfigError(f"--d-model {self.d_model} must be a multiple of --heads {self.heads}")
        head = self.d_model // self.heads
        if self.arch == "transformer" and self.positions == "rotary" and head % 2:
            raise ConfigError(f"--positions rotary needs an even head size, not --d-model / --heads = {head}")
        rnn_out = self.enc_hidden * (2 if self.bidirectional else 1)
        if self.arch == "rnn" and self.bridge == "identity" and rnn_out != self.dec_hidden:
            raise ConfigError(
                f"an identity bridge needs the encoder output ({rnn_out}) to equal --dec-hidden "
                f"({self.dec_hidden}); use --bridge linear"
            )


@dataclass
class TrainConfig:
    # The RNN's best 12-minute CPU recipe: many small updates, and a rate that decays to the end
    # of the run (docs/experiments.rst, "The RNN recipe"). The Transformer changes some: ARCH_DEFAULTS.
    lr: float = option(3e-3, "peak learning rate")
    optimizer: Literal["adam", "adamw"] = option("adam", "adamw decouples --weight-decay from the gradient")
    weight_decay: float = option(0.0, "L2 penalty (adam) or decoupled decay (adamw) on every weight", at_least=0)
    adam_beta2: float = option(
        0.999, "the decay of Adam's average of squared gradients (Transformers often use 0.98: it adapts sooner)"
    )
    batch_tokens: int = option(
        1000,
        "the size of a batch (one update, however many processes share it): its sentences x its longer padded "
        "side, source or target (0: --batch-size sentences)",
        at_least=0,
    )
    batch_size: int = option(64, "sentences per batch when --batch-tokens is 0", at_least=1)
    accum_steps: int = option(
        1,
        "compute each batch in this many pieces, one after the other, adding up their gradients: the same "
        "update in less memory (under torchrun each process splits its share of the batch)",
        at_least=1,
    )
    precision: Literal["fp32", "bf16", "fp16"] = option(
        "fp32", "autocast the forward pass to bf16 (CPU or GPU) or fp16 (GPU, with a gradient scaler)"
    )
    compile: bool = option(
        False, "torch.compile the model's forward pass (its first steps compile; measured slower on a 2-core CPU)"
    )
    epochs: int = option(20, at_least=0)
    max_steps: int = option(0, "stop after this many updates (0: no limit)", at_least=0)
    time_budget: float = option(0.0, "minutes of wall clock, validation included (0: none)", at_least=0)
    clip_norm: float = option(1.0, "gradient norm clipping (0: none)", at_least=0)
    teacher_forcing: float = option(
        1.0,
        "RNN: the probability that the decoder reads the reference token rather than one sampled from its own "
        "prediction (below 1: scheduled sampling); with a --teacher-forcing-schedule, where it decays to",
        at_least=0,
        at_most=1,
    )
    teacher_forcing_schedule: Literal["constant", "linear", "exponential", "inverse_sigmoid"] = option(
        "constant",
        "scheduled sampling's decay from 1 to --teacher-forcing (Bengio et al., 2015): linear over "
        "--teacher-forcing-k steps, exponential k**step, inverse_sigmoid k / (k + exp(step / k))",
    )
    teacher_forcing_k: float = option(1000.0, "the schedule's k (exponential: below 1, e.g. 0.999)", at_least=0)
    label_smoothing: float = option(0.1, at_least=0, at_most=1)
    scheduler: Literal["plateau", "inverse_sqrt", "linear", "cosine", "none"] = option(
        "linear",
        "plateau: halve the rate when validation BLEU stalls; inverse_sqrt: warm up, then 1/sqrt(step); "
        "linear, cosine: warm up, then decay to --lr-floor when --max-steps, --time-budget or --epochs ends the run",
    )
    warmup: int = option(200, "warm-up steps of the inverse_sqrt, linear and cosine schedules", at_least=0)
    lr_floor: float = option(0.01, "the fraction of --lr the linear and cosine schedules end at", at_least=0, at_most=1)
    patience: int = option(5, "validations without a better BLEU before stopping (0: never stop early)", at_least=0)
    valid_bleu_sentences: int = option(500, "validation sentences greedy-decoded for BLEU", at_least=1)
    valid_every: int = option(0, "also validate every N steps (0: after each epoch only)", at_least=0)
    log_every: int = option(100, "write the mean training loss of the last N steps to metrics.jsonl", at_least=1)
    ema: float = option(
        0.0,
        "keep an exponential moving average of the weights with this decay, e.g. 0.999, "
        "and validate, save and translate with it (0: none)",
        at_least=0,
        at_most=1,
    )
    tensorboard: bool = option(False, "also write the metrics for TensorBoard, in RUN_DIR/tensorboard")
    wandb: bool = option(False, "also log the metrics to Weights & Biases (WANDB_MODE=offline keeps them on disk)")
    wandb_project: str = option("nmt", "the W&B project")
    save_every: float = option(
        5.0, "minutes of training between saves of last.pt, beside those at validations (0: none)", at_least=0
    )
    keep_checkpoints: int = option(
        0, "also keep the models of the last N validations, for python -m nmt average", at_least=0
    )
    seed: int = option(1234, "the seed of initialisation, batching and dropout")
    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    run_dir: str = option("checkpoints/run", "where best.pt, last.pt and metrics.jsonl go")
    threads: int = option(0, "torch intra-op threads (0: torch's default)", at_least=0)

    def __post_init__(self):
        _check_fields(self, "train")
        if not 0 < self.lr <= 1:  # written so that NaN fails too
            raise ConfigError(f"--lr {self.lr}: must be above 0 and at most 1")
        if not 0 <= self.adam_beta2 < 1:
            raise ConfigError(f"--adam-beta2 {self.adam_beta2}: must be at least 0 and below 1")
        shape, k = self.teacher_forcing_schedule, self.teacher_forcing_k
        if (shape == "exponential" and not 0 < k < 1) or (shape in ("linear", "inverse_sigmoid") and k < 1):
            needs = "0 < k < 1" if shape == "exponential" else "k >= 1"
            raise ConfigError(f"--teacher-forcing-k {k}: the {shape} schedule needs {needs}")
        if self.device != "auto":
            try:
                import torch

                torch.device(self.device)
            except RuntimeError:
                raise ConfigError(f"--device {self.device!r}: choose auto, cpu, cuda or cuda:N") from None


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    SECTIONS = ("data", "model", "train")

    @classmethod
    def for_arch(cls, arch: str, **sections: dict) -> Config:
        """The defaults of architecture ``arch`` (ARCH_DEFAULTS over the dataclasses'), with
        ``sections`` ({"train": {"lr": 1e-3}}) over them: the same model from the library as
        from ``nmt train --arch ARCH``."""
        merged = {section: dict(ARCH_DEFAULTS.get(arch, {}).get(section, {})) for section in cls.SECTIONS}
        merged["model"]["arch"] = arch
        for section, values in sections.items():
            merged[section].update(values)
        return cls.from_dict(merged)

    def __post_init__(self):
        if self.train.teacher_forcing < 1 and self.model.arch == "transformer":
            raise ConfigError(
                "--teacher-forcing below 1 (scheduled sampling) is for the RNN: the Transformer decodes every "
                "target position at once"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        return cls(**{section: _known_fields(SECTION_TYPES[section], d.get(section, {})) for section in cls.SECTIONS})


SECTION_TYPES = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}

# What an architecture changes of the dataclasses' defaults. A Transformer trained for minutes on
# a CPU gets a few thousand updates: small batches give more of them, and a short warm-up lets a
# pre-norm model use a high rate early; without dropout and with Adam's beta2 at 0.98 it learns
# faster in that time, and an average of the weights smooths the end (docs/experiments.rst,
# "The Transformer recipe", one change at a time).
ARCH_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "transformer": {
        "model": {"dropout": 0.0},
        "train": {"warmup": 300, "batch_tokens": 2000, "adam_beta2": 0.98, "ema": 0.995},
    },
}


def flag(section: str, f: dataclasses.Field) -> str:
    """The command-line flag of a config field: --NAME with hyphens, unless the field says otherwise."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def choices(cls: type, name: str) -> tuple:
    """The values a Literal-typed field takes, () for any other field."""
    hint = typing.get_type_hints(cls)[name]
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else ()


def _check_fields(options: Any, section: str) -> None:
    """Types, Literal choices and numeric bounds of every field of ``options``."""
    for f in dataclasses.fields(options):
        value, name, kind = getattr(options, f.name), flag(section, f), type(f.default)
        if not (type(value) is kind or (kind is float and type(value) is int)):
            raise ConfigError(f"{name} takes {kind.__name__} values, not {value!r}")
        allowed = choices(type(options), f.name)
        if allowed and value not in allowed:
            raise ConfigError(f"{name} {value!r}: choose {', '.join(allowed[:-1])} or {allowed[-1]}")
        low, high = f.metadata.get("at_least"), f.metadata.get("at_most")
        if low is not None and high is not None and not low <= value <= high:
            raise ConfigError(f"{name} {value}: must be between {low} and {high}")
        if low is not None and high is None and not value >= low:  # NaN fails too
            raise ConfigError(f"{name} {value}: must be {'at least 1' if low == 1 else f'{low} or more'}")


def _known_fields(cls, values: dict):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} option(s): {', '.join(sorted(unknown))}")
    return cls(**values)
