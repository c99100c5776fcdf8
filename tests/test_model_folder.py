"""nmt export: a model folder (config.json, model.safetensors, tokenizers, a model card) that loads
without pickle and translates exactly as its checkpoint does, wherever a checkpoint is taken."""

import dataclasses
import json
import pickle
import tomllib

import pytest
import torch
from fastapi.testclient import TestClient
from tiny_checkpoints import TINY_RNN, save_untrained, train_tiny

from nmt.__main__ import main
from nmt.checkpoint import load_checkpoint
from nmt.config import Config, ModelConfig
from nmt.corpora import group_by_source, load_corpus
from nmt.metrics import score
from nmt.model_card import config_toml
from nmt.serve.app import create_app
from nmt.translator import Translator

LINES = ["forty-two", "seven thousand, one hundred and six", "", "nine", "three hundred and twelve"]
TRANSFORMER = ModelConfig(arch="transformer", d_model=32, heads=2, ff_size=64, enc_layers=1, dec_layers=1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("en-fr"))  # tied embeddings, an output list, attention


@pytest.fixture(scope="module")
def folder(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("exported") / "en-fr"
    assert main(["export", str(checkpoint), str(out), "--evaluate"]) == 0
    return out


def test_the_folder_holds_config_weights_tokenizer_and_a_card(folder):
    files = ["README.md", "config.json", "model.safetensors", "source.vocab.json"]  # one vocabulary, shared
    assert sorted(p.name for p in folder.iterdir()) == files
    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == "nmt-model" and config["languages"] == {"source": "en", "target": "fr"}
    assert config["tied_weights"]  # a shared matrix is stored once and named twice
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlanguage: [en, fr]\n") and "pipeline_tag: translation" in card
    assert "## Intended use and limitations" in card and "```toml\n[data]" in card
    assert f"BLEU {config['evaluation']['bleu']:.2f}" in card and "nrefs:" in card  # --evaluate's scores


def test_the_cards_toml_is_the_training_configuration(checkpoint, folder):
    card = (folder / "README.md").read_text()
    toml = card[card.index("```toml\n") + 8 : card.index("```", card.index("```toml\n") + 8)]
    trained = Translator.from_checkpoint(checkpoint).config
    assert Config.from_dict(tomllib.loads(toml)) == trained
    with_files = dataclasses.replace(trained.data, test_files=("test.en", "test.fr"))
    card_lines = config_toml({"data": dataclasses.asdict(with_files)})
    assert tomllib.loads("\n".join(card_lines))["data"]["test_files"] == ["test.en", "test.fr"]


@pytest.mark.parametrize("options", [{}, {"beam_size": 1}, {"n_best": 3, "attention": True}])
def test_the_folder_translates_exactly_as_the_checkpoint(checkpoint, folder, options):
    expected = Translator.from_checkpoint(checkpoint).translate_n_best(LINES, **options)
    got = Translator.from_pretrained(folder).translate_n_best(LINES, **options)
    for a, b in zip(expected, got):
        assert a.tokens == b.tokens and a.scores == b.scores
        assert (a.attention is None) == (b.attention is None)


def test_a_transformer_with_separate_vocabularies_round_trips(tmp_path):
    path = save_untrained(tmp_path / "transformer.pt", TRANSFORMER)  # en and fr word vocabularies apart
    assert main(["export", str(path), str(tmp_path / "folder")]) == 0
    assert {"source.vocab.json", "target.vocab.json"} <= {p.name for p in (tmp_path / "folder").iterdir()}
    a, b = Translator.from_checkpoint(path), Translator.from_pretrained(tmp_path / "folder")
    assert a.translate(LINES, beam_size=2) == b.translate(LINES, beam_size=2)


def test_loading_a_folder_runs_no_pickle(folder, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle was used")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    assert Translator.from_pretrained(folder).translate(["nine"])


def test_the_commands_take_the_folder(folder, checkpoint, tmp_path, capsys):
    (tmp_path / "in.en").write_text("\n".join(LINES) + "\n", encoding="utf-8")
    assert main(["translate", "--checkpoint", str(folder), "--input", str(tmp_path / "in.en")]) == 0
    assert capsys.readouterr().out.splitlines() == Translator.from_checkpoint(checkpoint).translate(LINES)
    assert main(["evaluate", "--checkpoint", str(folder), "--examples", "0"]) == 0  # its corpus fingerprint came along
    assert "BLEU " in capsys.readouterr().out
    with TestClient(create_app({("en", "fr"): Translator.from_pretrained(folder)})) as client:
        answer = client.post("/translate", json={"q": "nine", "source": "en", "target": "fr"}).json()
    assert answer == {"translatedText": Translator.from_checkpoint(checkpoint).translate(["nine"])[0]}


def test_a_folder_of_a_newer_format_is_refused_in_one_line(folder, tmp_path, capsys):
    newer = tmp_path / "newer"
    newer.mkdir()
    for path in folder.iterdir():
        (newer / path.name).write_bytes(path.read_bytes())
    config = json.loads((newer / "config.json").read_text())
    (newer / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    assert main(["translate", "--checkpoint", str(newer), "--input", "/dev/null"]) == 1
    [error] = capsys.readouterr().err.splitlines()
    assert error.startswith(f"error: {newer}: model folder format 99") and "upgrade nmt to read it" in error


def test_export_never_writes_into_an_existing_folder(checkpoint, folder, capsys):
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert main(["export", str(checkpoint), str(folder)]) == 1
    assert "exists already" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_the_untrained_rnn_exports_too(tmp_path):
    path = save_untrained(tmp_path / "rnn.pt", TINY_RNN)
    assert main(["export", str(path), str(tmp_path / "rnn")]) == 0
    assert Translator.from_pretrained(tmp_path / "rnn").translate(["nine"], beam_size=1) == Translator.from_checkpoint(
        path
    ).translate(["nine"], beam_size=1)


def test_an_int8_folder_holds_a_quarter_of_the_bytes_and_rounds_weights_by_half_a_step(checkpoint, folder, tmp_path):
    out = tmp_path / "int8"
    assert main(["export", str(checkpoint), str(out), "--quantize", "int8", "--evaluate"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["format_version"] == 2 and config["int8_weights"]
    assert (out / "model.safetensors").stat().st_size < 0.4 * (folder / "model.safetensors").stat().st_size
    assert "stored in int8" in (out / "README.md").read_text()
    original = torch.load(checkpoint, weights_only=False)["model"]
    loaded = load_checkpoint(out)["model"]
    assert loaded.keys() == original.keys()
    for name in config["int8_weights"]:
        step = original[name].abs().amax(dim=1, keepdim=True) / 127
        assert loaded[name].dtype == torch.float32 and torch.all(
            (loaded[name] - original[name]).abs() <= step / 2 + 1e-7
        )
    rounded = Translator.from_pretrained(out)  # --evaluate scored the rounded weights the folder holds
    groups = group_by_source(load_corpus(rounded.config.data).test)
    sources = [source for source, _ in groups]
    assert config["evaluation"]["bleu"] == pytest.approx(score(rounded.translate(sources), [r for _, r in groups]).bleu)


def test_a_folder_without_int8_weights_stays_in_the_first_format(folder):
    assert json.loads((folder / "config.json").read_text())["format_version"] == 1
