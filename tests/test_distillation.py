"""nmt distill: a teacher's translations of its training sources, as a student's corpus."""

import dataclasses
import json

import pytest
from tiny_checkpoints import TINY_RNN, train_tiny

from nmt.commands import distill as distill_command
from nmt.commands.distill import main
from nmt.config import Config, DataConfig, TrainConfig
from nmt.corpora import group_by_source, load_corpus
from nmt.distillation import distill, student_files, teacher_identity
from nmt.search import DEFAULT_LENGTH_PENALTY, SearchOptions
from nmt.training import train
from nmt.translator import Translator

GREEDY = SearchOptions(beam_size=1)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("teacher"))


@pytest.fixture(scope="module")
def distilled(teacher, tmp_path_factory):
    out = tmp_path_factory.mktemp("distilled") / "d"
    assert main(["--teacher", str(teacher), "--run-dir", str(out), "--beam", "1"]) == 0
    return out


def lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_each_training_source_gets_one_line_the_teachers_translation(teacher, distilled):
    translator = Translator.from_checkpoint(teacher)
    splits = load_corpus(translator.config.data)
    sources = [source for source, _ in group_by_source(splits.train)]
    files = student_files(distilled, "en", "fr")
    outputs = translator.translate(sources, GREEDY)
    kept = [(source, output) for source, output in zip(sources, outputs) if output]
    assert list(zip(*map(lines, files["train"]))) == kept
    for split in ("valid", "test"):  # held out as the teacher held them out
        assert list(zip(*map(lines, files[split]))) == getattr(splits, split)
    record = json.loads((distilled / "distill.json").read_text())
    assert record["empty_left_out"] == len(sources) - len(kept)
    assert record["done"] and record["teachers"] == teacher_identity([teacher]) and record["search"]["beam_size"] == 1
    assert not list(distilled.glob("*.partial"))


def test_the_record_names_the_search_with_its_defaults_written_out(teacher, tmp_path):
    translator = Translator.from_checkpoint(teacher)
    splits = load_corpus(translator.config.data)
    splits = dataclasses.replace(splits, train=splits.train[:50])  # the record is the point, not the corpus
    distill(translator, splits, tmp_path, SearchOptions(beam_size=2), teachers=teacher_identity([teacher]))
    search = json.loads((tmp_path / "distill.json").read_text())["search"]
    assert (search["beam_size"], search["length_penalty"]) == (2, DEFAULT_LENGTH_PENALTY)


def test_the_command_says_how_many_empty_translations_it_left_out(teacher, tmp_path, capsys):
    assert main(["--teacher", str(teacher), "--run-dir", str(tmp_path / "d"), "--beam", "1"]) == 0
    out, err = capsys.readouterr()
    empty = json.loads((tmp_path / "d" / "distill.json").read_text())["empty_left_out"]
    assert empty > 0  # the tiny teacher leaves some sources untranslated
    assert f"note: {empty} of them translated to an empty line, left out of the student's corpus" in err


def test_a_stopped_distillation_resumes_and_ends_as_one_that_never_stopped(teacher, distilled, tmp_path):
    translator = Translator.from_checkpoint(teacher)
    splits = load_corpus(translator.config.data)
    teachers = teacher_identity([teacher])
    chunks = []

    def stop_after_two_chunks(n):
        chunks.append(n)
        if len(chunks) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distill(
            translator, splits, tmp_path, GREEDY, teachers=teachers, chunk_lines=500, progress=stop_after_two_chunks
        )
    partial = tmp_path / "train.fr.partial"
    assert len(lines(partial)) == 1000
    with partial.open("a", encoding="utf-8") as f:
        f.write("half a li")  # a stop in the middle of a write
    resumed = []
    distill(translator, splits, tmp_path, GREEDY, teachers=teachers, on_resume=lambda done, total: resumed.append(done))
    assert resumed == [1000]
    for name in ("train.en", "train.fr", "valid.fr", "test.en", "distill.json"):
        assert (tmp_path / name).read_bytes() == (distilled / name).read_bytes()


def test_an_interrupted_command_says_it_resumes_and_the_same_command_does(
    teacher, distilled, tmp_path, monkeypatch, capsys
):
    real_distill = distill_command.distill

    def interrupted_after_two_chunks(*args, progress, **kwargs):
        chunks = []

        def count(n):
            progress(n)
            chunks.append(n)
            if len(chunks) == 2:
                raise KeyboardInterrupt  # what Ctrl-C or SIGTERM raise

        return real_distill(*args, progress=count, **{**kwargs, "chunk_lines": 500})

    command = ["--teacher", str(teacher), "--run-dir", str(tmp_path), "--beam", "1"]
    monkeypatch.setattr(distill_command, "distill", interrupted_after_two_chunks)
    assert main(command) == 130
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"kept in {tmp_path}; the same command resumes")
    monkeypatch.undo()
    assert len(lines(tmp_path / "train.fr.partial")) == 1000
    assert main(command) == 0
    for name in ("train.en", "train.fr", "distill.json"):
        assert (tmp_path / name).read_bytes() == (distilled / name).read_bytes()


def test_keep_original_adds_every_original_pair_after_the_teachers(teacher, tmp_path):
    assert main(["--teacher", str(teacher), "--run-dir", str(tmp_path), "--beam", "1", "--keep-original"]) == 0
    train_split = load_corpus(Translator.from_checkpoint(teacher).config.data).train
    sources = lines(tmp_path / "train.en")
    assert list(zip(sources, lines(tmp_path / "train.fr")))[-len(train_split) :] == train_split
    record = json.loads((tmp_path / "distill.json").read_text())
    assert len(sources) == len({s for s, _ in train_split}) - record["empty_left_out"] + len(train_split)


def test_a_folder_of_another_teacher_or_search_is_refused(teacher, distilled, tmp_path, capsys):
    (tmp_path / "distill.json").write_text(
        (distilled / "distill.json").read_text().replace('"done": true', '"done": false')
    )
    assert main(["--teacher", str(teacher), "--run-dir", str(tmp_path), "--beam", "2"]) == 1
    assert "holds a distillation with other search; give another --run-dir" in capsys.readouterr().err
    assert main(["--teacher", str(teacher), "--run-dir", str(distilled), "--beam", "1"]) == 1
    assert "holds a finished distillation" in capsys.readouterr().err


def test_a_student_trains_on_the_distilled_corpus_and_is_tested_on_the_teachers_test_set(
    teacher, distilled, tmp_path, capsys
):
    files = student_files(distilled, "en", "fr")
    data = DataConfig(
        corpus=f"{distilled}/train.{{lang}}",
        tokenizer="word",
        valid_files=tuple(map(str, files["valid"])),
        test_files=tuple(map(str, files["test"])),
    )
    train(
        Config(
            data=data,
            model=TINY_RNN,
            train=TrainConfig(max_steps=10, batch_size=32, batch_tokens=0, run_dir=str(tmp_path)),
        )
    )
    student = Translator.from_checkpoint(tmp_path / "last.pt")
    assert load_corpus(student.config.data).test == load_corpus(Translator.from_checkpoint(teacher).config.data).test
    assert len(student.translate(["three hundred and forty-two"])) == 1


def test_the_printed_command_trains_a_student(teacher, tmp_path, capsys):
    assert main(["--teacher", str(teacher), "--run-dir", str(tmp_path / "d"), "--beam", "1"]) == 0
    command = capsys.readouterr().out.splitlines()[-1]
    assert command.startswith("train a student: nmt train --corpus ")
    argv = command.removeprefix("train a student: nmt train ").split()
    from nmt.commands.options import build_parser, make_config

    config = make_config(build_parser("nmt train").parse_args(argv))
    assert config.data.test_files == tuple(str(p) for p in student_files(tmp_path / "d", "en", "fr")["test"])
