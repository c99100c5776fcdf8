"""translate.py / nmt translate and the Translator API, on tiny models of the demo corpus."""

import dataclasses
import io
import os
import signal
import subprocess
import sys
import time

import pytest
import sacrebleu
import torch
from tiny_checkpoints import ROOT, TINY_RNN, save_untrained, train_tiny

from nmt import search
from nmt.checkpoint import FORMAT_VERSION, load_checkpoint
from nmt.commands.cli import Exit
from nmt.commands.translate import main
from nmt.config import ModelConfig
from nmt.search import DEFAULT_BEAM, DEFAULT_MAX_LEN_CAP, SearchOptions
from nmt.specials import EOS
from nmt.translator import Translator

LINES = ["forty-two", "", "seven thousand, one hundred and six", "nine", "three hundred and twelve"]
LONG_LINE = " ".join(["one hundred and one"] * 75)  # 300 words; training lines have at most 8


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("en-fr"))


@pytest.fixture(scope="module")
def translator(checkpoint):
    return Translator.from_checkpoint(checkpoint)


def translate(capsys, *args):
    """(exit status, stdout, stderr) of translate.py with these arguments."""
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def assert_one_line_error(err):
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")


def test_stdin_to_stdout_in_a_subprocess(checkpoint, translator):
    result = subprocess.run(
        [sys.executable, "translate.py", "--checkpoint", str(checkpoint), "--beam", "1"],
        input="\n".join(LINES) + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == translator.translate(LINES, beam_size=1)


def translate_to(stdout, checkpoint, tmp_path, *, unbuffered: bool) -> subprocess.CompletedProcess:
    """translate.py of LINES in a subprocess writing to the file descriptor or file ``stdout``,
    its output buffered as in a user's shell unless ``unbuffered`` (PYTHONUNBUFFERED)."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    command = [
        sys.executable,
        "translate.py",
        "--checkpoint",
        str(checkpoint),
        "--input",
        str(write(tmp_path / "in", LINES)),
    ]
    return subprocess.run(
        command,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env | ({"PYTHONUNBUFFERED": "1"} if unbuffered else {}),
        timeout=60,
    )


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
def test_translating_for_a_reader_that_has_gone_stops_quietly(checkpoint, tmp_path, unbuffered):
    reader, writer = os.pipe()
    os.close(reader)  # as after `nmt translate ... | head -1`
    try:
        result = translate_to(writer, checkpoint, tmp_path, unbuffered=unbuffered)
    finally:
        os.close(writer)
    assert (result.returncode, result.stderr) == (Exit.READER_GONE, "")  # no traceback


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="/dev/full, a device that is always full, is Linux's")
@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
def test_translations_to_a_full_disk_are_one_line_error(checkpoint, tmp_path, unbuffered):
    with open("/dev/full", "w") as full:
        result = translate_to(full, checkpoint, tmp_path, unbuffered=unbuffered)
    assert result.returncode == Exit.ERROR
    assert result.stderr == "error: standard output: cannot write (No space left on device)\n"


def test_every_input_line_gives_one_output_line_in_order(checkpoint, translator, tmp_path, capsys):
    lines = LINES + [LONG_LINE] + LINES[::-1]
    status, _, err = translate(
        capsys,
        "--checkpoint",
        checkpoint,
        "--input",
        write(tmp_path / "in.en", lines),
        "--output",
        tmp_path / "out.fr",
        "--beam",
        "1",
        "--batch-size",
        "3",
    )
    assert status == 0, err
    output = (tmp_path / "out.fr").read_text(encoding="utf-8").split("\n")
    assert output[-1] == "" and len(output[:-1]) == len(lines)
    # each line translated alone gives what it gave in its batch, at its place
    assert output[:-1] == [translator.translate([line], beam_size=1)[0] for line in lines]
    assert output[1] == "" and output[0] == output[-2] and output[2] != ""


def test_n_best_gives_k_numbered_lines_per_input_best_first(checkpoint, translator, tmp_path, capsys):
    status, out, err = translate(
        capsys,
        "--checkpoint",
        checkpoint,
        "--input",
        write(tmp_path / "in.en", LINES[:3]),
        "--beam",
        "4",
        "--n-best",
        "3",
    )
    assert status == 0, err
    rows = [line.split("\t") for line in out.splitlines()]
    assert [int(number) for number, _, _ in rows] == [1, 1, 1, 2, 3, 3, 3]  # the empty line has one, empty
    assert rows[3] == ["2", "0.0000", ""]
    for first in (0, 4):
        scores = [float(score) for _, score, _ in rows[first : first + 3]]
        assert scores == sorted(scores, reverse=True)
    best = translator.translate(LINES[:3], beam_size=4)
    assert [rows[0][2], rows[4][2]] == [best[0], best[2]]


def test_ref_prints_bleu_chrf_and_ter_with_signatures(checkpoint, tmp_path, capsys):
    refs = ["quarante-deux", "", "sept mille cent six", "neuf", "trois cent douze"]
    status, out, err = translate(
        capsys,
        "--checkpoint",
        checkpoint,
        "--input",
        write(tmp_path / "in.en", LINES),
        "--ref",
        write(tmp_path / "ref.fr", refs),
    )
    assert status == 0, err
    expected = sacrebleu.corpus_bleu(out.splitlines(), [refs]).score
    assert f"BLEU {expected:.2f}" in err
    for metric in ("BLEU: nrefs:1|", "chrF: nrefs:1|", "TER: nrefs:1|"):
        assert metric in err


def test_several_reference_files_are_one_multi_reference_set(checkpoint, translator, tmp_path, capsys):
    outputs = translator.translate(LINES, beam_size=5)
    right = write(tmp_path / "right.fr", outputs)  # the model's own output
    # an empty line is no reference, but where every file's line is empty, the empty one counts
    wrong = write(tmp_path / "wrong.fr", ["zéro" if output else "" for output in outputs])
    status, _, err = translate(
        capsys, "--checkpoint", checkpoint, "--input", write(tmp_path / "in.en", LINES), "--ref", wrong, right
    )
    assert status == 0, err
    assert "BLEU 100.00" in err and "nrefs:2" in err


def test_a_reference_file_of_another_length_is_refused_before_translating(checkpoint, tmp_path, capsys):
    status, out, err = translate(
        capsys,
        "--checkpoint",
        checkpoint,
        "--input",
        write(tmp_path / "in.en", LINES),
        "--output",
        tmp_path / "out.fr",
        "--ref",
        write(tmp_path / "ref.fr", ["un", "deux"]),
    )
    assert status == 1
    assert_one_line_error(err)
    assert "ref.fr has 2 lines but the input has 5" in err
    assert not (tmp_path / "out.fr").exists()


def test_an_error_mid_translation_leaves_the_output_file_as_it_was(checkpoint, tmp_path, capsys, monkeypatch):
    output = write(tmp_path / "out.fr", ["the previous translation"])
    greedy, calls = search.greedy, []

    def interrupted_on_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return greedy(*args, **kwargs)

    monkeypatch.setattr(search, "greedy", interrupted_on_second_batch)
    status, _, err = translate(
        capsys,
        "--checkpoint",
        checkpoint,
        "--input",
        write(tmp_path / "in.en", LINES),
        "--output",
        output,
        "--beam",
        "1",
        "--batch-size",
        "1",
    )
    assert status == 130 and "interrupted" in err
    assert output.read_text(encoding="utf-8") == "the previous translation\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.en", "out.fr"]  # no temporary file left


HUNDREDS, UNITS = ("one", "two", "three", "four"), ("one", "two", "six", "nine", "ten")
TWENTY_LINES = [f"{a} hundred and {b}" for a in HUNDREDS for b in UNITS]


@pytest.mark.parametrize(
    "how",
    [
        "mkfifo in.fifo && (cat in.en > in.fifo &) && {translate} --input in.fifo --output out.fr",
        "{translate} --input <(cat in.en) --ref <(cat ref.fr) --output out.fr",
        "cat in.en | {translate} --input /dev/stdin --output out.fr",
    ],
    ids=["named pipe", "process substitution", "/dev/stdin"],
)
def test_input_that_can_be_read_only_once_is_translated_whole(how, checkpoint, translator, tmp_path):
    write(tmp_path / "in.en", TWENTY_LINES)
    write(tmp_path / "ref.fr", translator.translate(TWENTY_LINES, beam_size=1))
    translate = f"{sys.executable} {ROOT / 'translate.py'} --checkpoint {checkpoint} --beam 1"
    result = subprocess.run(
        ["bash", "-c", how.format(translate=translate)], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 0, result.stderr
    translated = (tmp_path / "out.fr").read_text(encoding="utf-8").splitlines()
    assert translated == translator.translate(TWENTY_LINES, beam_size=1)
    if "--ref" in how:  # the references, read from a pipe too, matched all twenty lines
        assert "chrF 100.00  TER 0.00" in result.stderr


def test_a_terminated_translation_leaves_no_output_and_no_temporary_file(checkpoint, tmp_path):
    write(tmp_path / "in.en", LINES * 20_000)  # far more than is translated before the signal
    command = [sys.executable, ROOT / "translate.py", "--checkpoint", checkpoint, "--beam", "1"]
    command += ["--input", "in.en", "--output", "out.fr", "--chunk-lines", "50"]
    stderr = tmp_path / "stderr"
    with stderr.open("w") as err:
        process = subprocess.Popen(command, cwd=tmp_path, stderr=err)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.fr.tmp-*")) and time.monotonic() < deadline:  # writing has begun
        time.sleep(0.05)
    assert process.poll() is None, stderr.read_text()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert process.returncode == 130, stderr.read_text()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.en", "stderr"]
    assert stderr.read_text().splitlines()[-1] == "interrupted"


def test_a_reference_file_shorter_than_a_piped_input_is_refused_after_translating(checkpoint, tmp_path):
    write(tmp_path / "in.en", TWENTY_LINES)
    write(tmp_path / "ref.fr", ["un"] * 3)
    result = subprocess.run(
        ["bash", "-c", f"cat in.en | {sys.executable} {ROOT / 'translate.py'} --checkpoint {checkpoint} --ref ref.fr"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 1
    assert "ref.fr has 3 lines but the input has 20" in result.stderr
    assert len(result.stdout.splitlines()) == 20  # what was translated is not lost


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda path, good: None, "no such checkpoint file"),
        (lambda path, good: path.write_bytes(good.read_bytes()[:5000]), "not a checkpoint"),
        (lambda path, good: path.write_bytes(b"just some text"), "not a checkpoint"),
    ],
)
def test_a_missing_or_damaged_checkpoint_is_one_line(damage, message, checkpoint, tmp_path, capsys):
    damage(tmp_path / "model.pt", checkpoint)
    status, _, err = translate(
        capsys, "--checkpoint", tmp_path / "model.pt", "--input", write(tmp_path / "in.en", LINES)
    )
    assert status == 1 and message in err
    assert_one_line_error(err)


def test_a_checkpoint_of_a_newer_format_is_refused(checkpoint, tmp_path, capsys):
    newer = tmp_path / "newer.pt"
    torch.save({**load_checkpoint(checkpoint), "format_version": FORMAT_VERSION + 1}, newer)
    status, _, err = translate(capsys, "--checkpoint", newer, "--input", write(tmp_path / "in.en", LINES))
    assert status == 1 and "is newer than this nmt" in err
    assert_one_line_error(err)


def test_unknown_words_are_translated_and_reported_once(checkpoint, tmp_path, capsys):
    lines = ["I am cold.", "forty-two", "I am forty-two"]
    status, out, err = translate(capsys, "--checkpoint", checkpoint, "--input", write(tmp_path / "in.en", lines))
    assert status == 0
    assert len(out.splitlines()) == 3
    assert err == "note: 4 unknown words (read as <unk>), e.g. I, am, cold, .\n"


def test_an_empty_input_file_gives_an_empty_output_file_and_a_note(checkpoint, tmp_path, capsys):
    (tmp_path / "in.en").write_bytes(b"")
    status, out, err = translate(
        capsys, "--checkpoint", checkpoint, "--input", tmp_path / "in.en", "--output", tmp_path / "out.fr"
    )
    assert status == 0
    assert (tmp_path / "out.fr").read_bytes() == b""
    assert "in.en is empty: nothing to translate" in err


def test_a_non_utf8_input_names_the_file_and_line(checkpoint, tmp_path, capsys):
    (tmp_path / "in.en").write_bytes("nine\nt\xe9l\xe9phone\n".encode("latin-1"))
    status, _, err = translate(
        capsys, "--checkpoint", checkpoint, "--input", tmp_path / "in.en", "--output", tmp_path / "out.fr"
    )
    assert status == 1
    assert_one_line_error(err)
    assert "in.en line 2: not UTF-8" in err
    assert not (tmp_path / "out.fr").exists()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--beam", "0"], "the beam size must be at least 1, not 0"),
        (["--beam", "100000"], "a beam of 100000 is wider than the target vocabulary"),
        (["--beam", "2", "--n-best", "3"], "n-best must be between 1 and the beam size (2), not 3"),
        (["--max-len", "0"], "the output length limit must be at least 1"),
        (["--max-len-a", "0", "--max-len-b", "0"], "leaves no room for a token"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_impossible_search_options_are_refused(options, message, checkpoint, tmp_path, capsys):
    status, out, err = translate(
        capsys, "--checkpoint", checkpoint, "--input", write(tmp_path / "in.en", LINES), *options
    )
    assert status == 2 and out == ""
    assert_one_line_error(err)
    assert message in err


def test_max_len_limits_every_output(translator):
    for options in ({"max_len": 2}, {"max_len_a": 0.0, "max_len_b": 2}):
        for translation in translator.translate_n_best([LONG_LINE, "nine"], beam_size=3, **options):
            assert len(translation.tokens[0]) <= 2


def test_no_output_is_longer_than_the_cap_however_long_its_source():
    assert SearchOptions().output_limits(torch.tensor([3, 3000])).tolist() == [14, DEFAULT_MAX_LEN_CAP]
    assert SearchOptions(max_len=400).output_limits(torch.tensor([3000])).tolist() == [400]  # a fixed limit is kept


def test_the_cap_stops_a_long_line_that_would_not_end(translator, monkeypatch):
    steps = []
    step = translator.model.step

    def never_ending_step(*args, **kwargs):  # a model that never gives EOS its probability
        logits, state, attn = step(*args, **kwargs)
        steps.append(1)
        return logits.index_fill(-1, torch.tensor([EOS]), float("-inf")), state, attn

    monkeypatch.setattr(translator.model, "step", never_ending_step)
    [long] = translator.translate_n_best([LONG_LINE], beam_size=2, max_len_cap=30)
    assert len(long.tokens[0]) == 30 and long.cut[0]
    assert len(steps) == 30  # 1.5 * 300 + 10 = 460 without the cap


def test_the_library_and_the_command_line_search_alike_by_default(checkpoint, translator, tmp_path, capsys):
    status, out, _ = translate(capsys, "--checkpoint", checkpoint, "--input", write(tmp_path / "in.en", LINES))
    assert status == 0
    assert out.splitlines() == translator.translate(LINES) == translator.translate(LINES, beam_size=DEFAULT_BEAM)


def test_help_names_the_default_cap_on_output_length(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert f"(default: {DEFAULT_MAX_LEN_CAP})" in " ".join(capsys.readouterr().out.split())


def test_a_source_longer_than_the_transformers_positions_is_cut_with_a_warning(tmp_path, capsys):
    model = ModelConfig(
        arch="transformer", d_model=32, heads=2, ff_size=64, enc_layers=1, dec_layers=1, max_positions=16
    )
    checkpoint = save_untrained(tmp_path / "transformer.pt", model)
    lines = ["nine", LONG_LINE]
    status, out, err = translate(
        capsys, "--checkpoint", checkpoint, "--input", write(tmp_path / "in.en", lines), "--beam", "2"
    )
    assert status == 0, err
    assert len(out.splitlines()) == 2
    assert (
        "warning: line 2: 300 source tokens, more than the model's 16 positions; only the first 16 are translated"
        in err
    )
    translator = Translator.from_checkpoint(checkpoint)
    [long] = translator.translate_n_best([LONG_LINE], attention=True)
    assert long.attention[0].shape[1] == 16 and len(long.tokens[0]) <= 16
    assert translator.has_attention()  # the cross-attention, for plots


def test_interactive_mode_shows_the_beams_n_best_for_each_line(checkpoint, translator, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("nine\n\nI am nine\n"))
    status, out, err = translate(capsys, "--checkpoint", checkpoint, "--interactive", "--beam", "3")
    assert status == 0
    lines = out.splitlines()
    assert [line for line in lines if line.startswith(">")] == ["> nine", "> ", "> I am nine"]
    assert len(lines) == 3 + 3 + 3  # three echoes, three hypotheses for each non-empty line
    nine = translator.translate_n_best(["nine"], beam_size=3, n_best=3)[0]
    assert [line.split(maxsplit=2)[2] for line in lines[1:4]] == nine.hypotheses
    assert [float(line.split()[1]) for line in lines[1:4]] == pytest.approx(nine.scores, abs=1e-4)
    assert err == "note: 2 unknown words (read as <unk>), e.g. I, am\n"


def test_attention_plots_are_one_png_per_non_empty_line(checkpoint, tmp_path, capsys):
    status, _, err = translate(
        capsys,
        "--checkpoint",
        checkpoint,
        "--input",
        write(tmp_path / "in.en", LINES[:3]),
        "--plot-attention",
        tmp_path / "attention.png",
    )
    assert status == 0, err
    plots = sorted(p.name for p in tmp_path.glob("attention*"))
    assert plots == ["attention-1.png", "attention-3.png"]
    assert (tmp_path / "attention-3.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_into_a_missing_folder_are_refused_before_translating(checkpoint, tmp_path, capsys):
    status, out, err = translate(
        capsys,
        "--checkpoint",
        checkpoint,
        "--input",
        write(tmp_path / "in.en", LINES),
        "--plot-attention",
        tmp_path / "missing" / "attention.png",
    )
    assert status == 1 and out == ""
    assert_one_line_error(err)
    assert "the folder" in err and "does not exist" in err


def test_without_matplotlib_the_plot_option_says_how_to_install_it(checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes "import matplotlib" fail
    status, out, err = translate(
        capsys,
        "--checkpoint",
        checkpoint,
        "--input",
        write(tmp_path / "in.en", LINES),
        "--plot-attention",
        tmp_path / "attention.png",
    )
    assert status == 1 and out == ""
    assert_one_line_error(err)
    assert 'matplotlib, which is not installed: pip install -e ".[plot]"' in err


def test_a_model_without_attention_has_nothing_to_plot(tmp_path, capsys):
    checkpoint = save_untrained(tmp_path / "plain.pt", dataclasses.replace(TINY_RNN, attention="none"))
    status, _, err = translate(
        capsys,
        "--checkpoint",
        checkpoint,
        "--input",
        write(tmp_path / "in.en", LINES),
        "--plot-attention",
        tmp_path / "attention.png",
    )
    assert status == 2
    assert_one_line_error(err)
    assert "this model has no attention to plot" in err


def test_attention_labels_match_the_attention_shape(translator):
    [translation] = translator.translate_n_best(["seven thousand, one hundred and six"], beam_size=2, attention=True)
    rows, columns = translation.attention[0].shape
    assert columns == len(translator.source_tokens(translation.source))
    assert rows == len(translator.output_tokens(translation))


def test_the_readme_python_api_snippet(checkpoint):
    from nmt import Translator

    translator = Translator.from_checkpoint(checkpoint)
    [translation] = translator.translate(["I am cold."])  # beam 5, as translate.py
    [greedy] = translator.translate(["I am cold."], beam_size=1)  # greedy search
    assert isinstance(translation, str) and isinstance(greedy, str)
    assert translator.translate(["nine", ""])[1] == ""


def test_the_python_api_normalises_lines_as_the_command_line_and_training_do(translator):
    decomposed = "sept mille, cent six".replace("e", "e\u0301")  # e + combining acute: é decomposed
    composed = "sept mille, cent six".replace("e", "\u00e9")
    spaced = "seven\u00a0thousand,\u2009one hundred  and six"  # no-break, thin and doubled spaces
    assert translator.translate([decomposed]) == translator.translate([composed])
    assert translator.translate([spaced]) == translator.translate(["seven thousand, one hundred and six"])


def test_a_length_penalty_with_beam_1_is_honoured_and_the_score_is_what_was_ranked(translator):
    line = "seven thousand, one hundred and six"
    [greedy] = translator.translate_n_best([line], beam_size=1)
    [penalised] = translator.translate_n_best([line], beam_size=1, length_penalty=4.0)
    if penalised.tokens == greedy.tokens:  # same output: the score still carries the penalty
        length = len(greedy.tokens[0]) + (not greedy.cut[0])  # generated tokens, EOS included
        assert penalised.scores[0] == pytest.approx(greedy.scores[0] / ((5 + length) / 6) ** 4.0, rel=1e-5)
    else:
        assert len(penalised.tokens[0]) > len(greedy.tokens[0])


def test_the_command_counts_translations_stopped_by_the_length_limit(checkpoint, translator, tmp_path, capsys):
    cut = sum(t.cut[0] for t in translator.translate_n_best(LINES, beam_size=5, max_len=1))
    assert cut > 0  # one token, EOS included, is too few for most of these numbers
    status, out, err = translate(
        capsys, "--checkpoint", checkpoint, "--input", write(tmp_path / "in.en", LINES), "--max-len", "1"
    )
    assert status == 0
    assert f"note: {cut} of {len(LINES)} translations stopped at the output length limit" in err
