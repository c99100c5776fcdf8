"""A model card (README.md) for a model folder, written from what the checkpoint knows: what the
model is, what it was trained on and under which licence, how long, how it scored, how to use it,
and what it is not for. Its YAML header is the Hugging Face Hub's."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from nmt.download import download_for, is_download
from nmt.languages import canonical
from nmt.metrics import LONG_SENTENCE


def model_card(folder_config: dict[str, Any], parameters: int) -> str:
    config, languages = folder_config["config"], folder_config["languages"]
    src, trg = languages["source"], languages["target"]
    model, data = config["model"], config["data"]
    corpus = _corpus(data["corpus"])
    task = f"reconstruction of {src} sentences (an autoencoder)" if src == trg else f"translation from {src} to {trg}"
    header = [
        "---",
        f"language: [{canonical(src)}]" if src == trg else f"language: [{canonical(src)}, {canonical(trg)}]",
        *([f"license: {corpus['licence']}"] if corpus["licence"] else []),
        "library_name: nmt",
        "pipeline_tag: translation",
        f"tags: [translation, nmt, {model['arch']}]",
        "---",
    ]
    lines = [
        f"# nmt {src}→{trg}: {_architecture(model)}",
        "",
        f"A model for {task}, trained with nmt (`nmt train`) and written by `nmt export`.",
        f"{parameters / 1e6:.2f}M weights"
        + (", every matrix stored in int8 with a scale per row" if folder_config.get("int8_weights") else "")
        + f"; tokenizer: {_tokenizer(data)}.",
        "",
        "## Use",
        "",
        "```",
        'echo "..." | nmt translate --checkpoint THIS_FOLDER       # beam 5',
        "nmt serve --checkpoint THIS_FOLDER                        # HTTP API and a page",
        "```",
        "",
        "```python",
        "from nmt import Translator",
        "",
        'translator = Translator.from_pretrained("THIS_FOLDER")',
        'translator.translate(["..."])',
        "```",
        "",
        "## Training data",
        "",
        f"Corpus `{data['corpus']}`"
        + (f": {corpus['attribution']}" if corpus["attribution"] else "")
        + (f", licence {corpus['licence'].upper()}." if corpus["licence"] else ". Its licence is not recorded."),
        _split_sizes(folder_config.get("corpus_fingerprint")),
        "",
        "## Training",
        "",
        _progress(folder_config.get("progress") or {}),
        "The configuration, for `nmt train --config FILE.toml`:",
        "",
        "```toml",
        *config_toml(config),
        "```",
        "",
        "## Evaluation",
        "",
        *_evaluation(folder_config.get("evaluation")),
        "",
        "## Intended use and limitations",
        "",
        f"For {task} of text like the training corpus's. A model trained on short everyday sentences"
        f" does worse on long ones (sources of {LONG_SENTENCE}+ words are scored apart above when"
        " evaluated), on other domains and on rare words; it makes agreement errors (gender, number)"
        " and can produce fluent output that is wrong. Do not rely on it where a mistranslation does"
        " harm without a person checking.",
        "",
    ]
    return "\n".join(header + [""] + lines)


def _corpus(name: str) -> dict[str, str]:
    """The registry's licence and attribution for a named corpus, or a file downloaded under its name."""
    file = PurePath(name).name
    for key in (name, file.removesuffix(".zip")):
        if is_download(key) and file in (key, download_for(key).filename):
            download = download_for(key)
            return {"licence": download.licence, "attribution": download.attribution}
    return {"licence": "", "attribution": ""}


def _architecture(model: dict) -> str:
    if model["arch"] == "transformer":
        return (
            f"Transformer, d_model {model['d_model']}, {model['enc_layers']}+{model['dec_layers']} layers,"
            f" {model['heads']} heads, {model['positions']} positions"
        )
    direction = "bidirectional " if model["bidirectional"] else ""
    attention = "Bahdanau attention" if model["attention"] == "bahdanau" else "no attention"
    layers = f"{model['layers']} layer{'s' if model['layers'] > 1 else ''}"
    return f"{direction}{model['cell'].upper()} encoder-decoder, {layers}, {attention}"


def _tokenizer(data: dict) -> str:
    spm = f"SentencePiece {data['spm_model_type']}, {data['vocab_size']} pieces"
    kind = spm if data["tokenizer"] == "spm" else "words"
    return kind + (", one vocabulary for both sides" if data["joint_vocab"] else "")


def _split_sizes(fingerprint: dict | None) -> str:
    if not fingerprint:
        return ""
    return (
        f"{fingerprint.get('pairs', '?')} pairs read; {fingerprint.get('train_pairs', '?')} for training,"
        f" {fingerprint.get('valid_pairs', '?')} for validation and {fingerprint.get('test_pairs', '?')} for"
        " testing, split by source sentence (no source in two splits) from the data seed below."
    )


def _progress(progress: dict) -> str:
    if not progress:
        return ""
    minutes = progress.get("elapsed", 0) / 60
    bleu = (progress.get("metrics") or {}).get("valid_bleu")
    valid = f", validation BLEU (greedy) {bleu:.2f}" if bleu is not None else ""
    return f"{progress.get('step', '?')} updates over {minutes:.1f} minutes{valid}.\n"


def _evaluation(evaluation: dict | None) -> list[str]:
    if not evaluation:
        return ["Not evaluated at export; `nmt evaluate --checkpoint THIS_FOLDER` scores it on its test split."]
    groups = "; ".join(f"{g['name']} ({g['sentences']} sentences) {g['bleu']:.2f}" for g in evaluation["by_length"])
    return [
        f"On the held-out test split, beam 5: BLEU {evaluation['bleu']:.2f}, chrF {evaluation['chrf']:.2f},"
        f" TER {evaluation['ter']:.2f}" + (f"; BLEU by source length: {groups}." if groups else "."),
        "",
        *(f"- {name}: `{signature}`" for name, signature in evaluation["signatures"].items()),
    ]


def config_toml(config: dict) -> list[str]:
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines += [f"{name} = {_toml_value(value)}" for name, value in values.items()]
        lines.append("")
    return lines[:-1]


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):  # given valid / test files
        return "[" + ", ".join(map(_toml_value, value)) + "]"
    return repr(value)
