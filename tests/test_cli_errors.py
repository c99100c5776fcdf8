"""Misusing the training and corpus commands: one line on stderr naming the problem, a non-zero
exit status, never a traceback. Every option is checked before the corpus is read."""

import subprocess
import sys
from pathlib import Path

import pytest

from nmt.__main__ import main as nmt_main
from nmt.commands.train import main

ROOT = Path(__file__).resolve().parent.parent
TINY = [
    "--tokenizer",
    "word",
    "--emb-size",
    "16",
    "--enc-hidden",
    "16",
    "--dec-hidden",
    "16",
    "--valid-size",
    "5",
    "--test-size",
    "0",
    "--valid-bleu-sentences",
    "5",
    "--max-steps",
    "2",
]


@pytest.fixture
def files(tmp_path) -> Path:
    """A good corpus and the bad ones the table names, in tmp_path."""
    good = "".join(f"Sentence number {i}.\tPhrase numéro {i}.\n" for i in range(50))
    (tmp_path / "good.txt").write_text(good, encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes(good.encode("utf-8") + "Déjà vu.\tDéjà vu.\n".encode("latin-1"))
    (tmp_path / "no-tab.txt").write_text(good + "A line without a tab\n", encoding="utf-8")
    (tmp_path / "short.en").write_text("One.\nTwo.\nThree.\n", encoding="utf-8")
    (tmp_path / "short.fr").write_text("Un.\nDeux.\n", encoding="utf-8")
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "unknown-option.toml").write_text("[model]\nwarp_drive = true\n")
    (tmp_path / "wrong-type.toml").write_text('[model]\nheads = "four"\n')
    (tmp_path / "broken.toml").write_text("[model\n")
    return tmp_path


# (flags, status, what the one line on stderr says); {tmp} is the folder of `files`, and
# --corpus {tmp}/good.txt and --run-dir {tmp}/run come first, so the flags here win.
MISUSES = {
    "unknown cell": (["--cell", "foo"], 2, "--cell 'foo': choose lstm, gru or rnn"),
    "unknown architecture": (["--arch", "foo"], 2, "--arch 'foo': choose rnn or transformer"),
    "unknown scheduler": (
        ["--scheduler", "foo"],
        2,
        "--scheduler 'foo': choose plateau, inverse_sqrt, linear, cosine or none",
    ),
    "unknown tokenizer": (["--tokenizer", "foo"], 2, "--tokenizer 'foo': choose word or spm"),
    "unknown attention": (["--attention", "luong"], 2, "--attention 'luong': choose bahdanau or none"),
    "unknown bridge": (["--bridge", "foo"], 2, "--bridge 'foo'"),
    "unknown RNN implementation": (["--rnn-impl", "cuda"], 2, "--rnn-impl 'cuda'"),
    "unknown norm, even for an RNN": (["--norm", "middle"], 2, "--norm 'middle'"),
    "not a language code": (["--src", "german"], 2, "--src 'german': not an ISO 639-1 or 639-3 code"),
    "not a real language": (["--tgt", "xx"], 2, "--tgt 'xx': not an ISO 639-1 or 639-3 code"),
    "unknown device": (["--device", "tpu"], 2, "--device 'tpu'"),
    "zero max length": (["--max-len", "0"], 2, "--max-len 0: must be at least 1"),
    "min length above max": (["--min-len", "9", "--max-len", "5"], 2, "--min-len 9 is above --max-len 5"),
    "zero batch size": (["--batch-size", "0"], 2, "--batch-size 0: must be at least 1"),
    "negative batch tokens": (["--batch-tokens", "-5"], 2, "--batch-tokens -5: must be 0 or more"),
    "zero embedding": (["--emb-size", "0"], 2, "--emb-size 0: must be at least 1"),
    "zero layers": (["--layers", "0"], 2, "--layers 0: must be at least 1"),
    "dropout above 1": (["--dropout", "1.5"], 2, "--dropout 1.5: must be between 0 and 1"),
    "teacher forcing above 1": (["--teacher-forcing", "3"], 2, "--teacher-forcing 3.0: must be between 0 and 1"),
    "zero learning rate": (["--lr", "0"], 2, "--lr 0.0: must be above 0"),
    "huge learning rate": (["--lr", "1e38"], 2, "--lr 1e+38: must be above 0"),
    "NaN learning rate": (["--lr", "nan"], 2, "--lr nan: must be above 0"),
    "Adam's beta2 of 1": (["--adam-beta2", "1"], 2, "--adam-beta2 1.0: must be at least 0 and below 1"),
    "vocabulary no bigger than the specials": (
        ["--vocab-size", "3"],
        2,
        "--vocab-size 3: must be 0 (no cap) or above 4",
    ),
    "no validation sentences": (["--valid-size", "0"], 2, "--valid-size 0: must be at least 1"),
    "heads that do not divide d_model": (
        ["--arch", "transformer", "--d-model", "10", "--heads", "3"],
        2,
        "--d-model 10 must be a multiple of --heads 3",
    ),
    "not a number": (["--lr", "fast"], 2, "argument --lr: invalid float value: 'fast'"),
    "unknown flag": (["--learning-rate", "0.1"], 2, "unrecognized arguments: --learning-rate"),
    "missing config file": (["--config", "{tmp}/none.toml"], 2, "none.toml: cannot read config"),
    "unparsable config file": (["--config", "{tmp}/broken.toml"], 2, "broken.toml: cannot read config"),
    "unknown option in a config file": (
        ["--config", "{tmp}/unknown-option.toml"],
        2,
        "unknown ModelConfig option(s): warp_drive",
    ),
    "wrong type in a config file": (["--config", "{tmp}/wrong-type.toml"], 2, "--heads takes int values, not 'four'"),
    "missing corpus": (["--corpus", "{tmp}/missing.txt"], 1, "corpus not found: {tmp}/missing.txt"),
    "unknown corpus name": (["--corpus", "eng-deu"], 1, "corpus not found: eng-deu"),
    "parallel files of unequal length": (
        ["--corpus", "{tmp}/short.{lang}"],
        1,
        "parallel files differ in length: {tmp}/short.en has 3 lines, {tmp}/short.fr has 2",
    ),
    "a corpus file that is not UTF-8": (["--corpus", "{tmp}/latin1.txt"], 1, "{tmp}/latin1.txt line 51: not UTF-8"),
    "a line without a tab": (["--corpus", "{tmp}/no-tab.txt"], 1, "{tmp}/no-tab.txt line 51: no tab between"),
    "nothing left after the length filter": (["--max-len", "2"], 1, "no training examples"),
    "too few pieces for the characters": (
        ["--tokenizer", "spm", "--vocab-size", "10"],
        1,
        "vocab_size=10 is too small",
    ),
    "a run folder that cannot be made": (
        ["--run-dir", "{tmp}/a-file/run"],
        1,
        "cannot write checkpoints to {tmp}/a-file/run",
    ),
    "resuming with no last.pt": (["--resume"], 1, "{tmp}/run/last.pt: no such checkpoint file"),
}


def run_main(argv: list[str], capsys) -> tuple[int, list[str]]:
    try:
        status = main(argv)
    except SystemExit as exit:  # argparse's errors
        status = exit.code
    return status, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("flags, status, message", MISUSES.values(), ids=MISUSES.keys())
def test_misuse_of_train_gives_one_error_line_and_a_non_zero_status(files, capsys, flags, status, message):
    argv = ["--corpus", f"{files}/good.txt", "--run-dir", f"{files}/run", *TINY] + [
        f.replace("{tmp}", str(files)) for f in flags
    ]
    got_status, stderr = run_main(argv, capsys)
    assert (got_status, len(stderr)) == (status, 1), stderr
    assert "error: " in stderr[0] and message.replace("{tmp}", str(files)) in stderr[0]


def test_options_are_checked_before_the_corpus_is_read(files, capsys):
    status, stderr = run_main(["--corpus", f"{files}/missing.txt", "--cell", "foo"], capsys)
    assert status == 2 and "--cell" in stderr[0]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--cell", "foo"], "error: --cell 'foo': choose lstm, gru or rnn"),
        (
            ["--corpus", "{tmp}/latin1.txt"],
            "error: {tmp}/latin1.txt line 51: not UTF-8 (byte 0xe9 at byte 2 of the line)",
        ),
    ],
    ids=["bad option", "bad corpus"],
)
def test_the_command_prints_no_traceback(files, flags, message):
    argv = ["--corpus", f"{files}/good.txt", "--run-dir", f"{files}/run", *TINY] + [
        f.replace("{tmp}", str(files)) for f in flags
    ]
    done = subprocess.run([sys.executable, str(ROOT / "train_nmt.py"), *argv], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [message.replace("{tmp}", str(files))]


def test_an_unknown_corpus_ends_in_the_corpus_tools_error_line(capsys):
    with pytest.raises(SystemExit) as exit:
        nmt_main(["fetch", "eng-deu"])
    stderr = capsys.readouterr().err.strip().splitlines()
    assert exit.value.code == 2 and "error: " in stderr[-1] and "unknown corpus 'eng-deu'" in stderr[-1]


def test_the_corpus_tool_says_where_it_cannot_write(files, capsys):
    with pytest.raises(SystemExit) as exit:
        nmt_main(["fetch", "eng-fra", "--dest", f"{files}/a-file/corpora"])
    stderr = capsys.readouterr().err.strip().splitlines()
    assert exit.value.code == 1 and len(stderr) == 1 and stderr[0].startswith("error: could not download eng-fra")
