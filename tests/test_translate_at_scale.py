"""translate.py on files of any size, with int8 weights, ensembles and sampling: a file streams
through in bounded chunks with the same output as read whole, and every new option has its
one-line error for the combination that makes no sense."""

import warnings

import pytest
import torch
from test_translate import LINES, assert_one_line_error, translate, write
from tiny_checkpoints import TINY_RNN, save_untrained, train_tiny

from nmt.commands.textio import count_lines, iter_lines
from nmt.config import ModelConfig
from nmt.data import make_batch
from nmt.models.shortlist import positions_in_list
from nmt.quantize import QUANTIZED_LAYERS, quantize_int8
from nmt.specials import EOS, PAD
from nmt.translator import Translator

TINY_TRANSFORMER = ModelConfig(arch="transformer", d_model=32, heads=2, ff_size=64, enc_layers=2, dec_layers=2)
MANY = [line for _ in range(7) for line in LINES]  # 35 lines, 7 of them empty


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("en-fr"))


@pytest.fixture(scope="module")
def other_checkpoint(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("en-fr-again"), steps=30)


def test_a_file_streamed_in_small_chunks_translates_as_it_does_read_whole(checkpoint, tmp_path, capsys):
    source = write(tmp_path / "in.en", MANY)
    outputs = []
    for chunk in ("4", "100000"):
        status, _, err = translate(
            capsys,
            "--checkpoint",
            checkpoint,
            "--input",
            source,
            "--output",
            tmp_path / f"out.{chunk}",
            "--chunk-lines",
            chunk,
        )
        assert status == 0, err
        outputs.append((tmp_path / f"out.{chunk}").read_text(encoding="utf-8"))
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == len(MANY)
    assert Translator.from_checkpoint(checkpoint).translate(MANY, beam_size=5) == outputs[0].splitlines()


def test_streaming_reads_lines_one_at_a_time_and_counts_them_as_wc_does(tmp_path):
    (tmp_path / "a").write_bytes(b"one\ntwo\nthree")  # no newline at the end: still a line
    (tmp_path / "b").write_bytes(b"one\n\ntwo\n")
    assert list(iter_lines(tmp_path / "a")) == ["one", "two", "three"] and count_lines(tmp_path / "a") == 3
    assert list(iter_lines(tmp_path / "b")) == ["one", "", "two"] and count_lines(tmp_path / "b") == 3


def test_a_bad_line_deep_in_a_streamed_file_names_its_line_and_leaves_no_output(checkpoint, tmp_path, capsys):
    source = tmp_path / "in.en"
    source.write_bytes(("nine\n" * 30).encode() + "t\xe9l\xe9phone\n".encode("latin-1"))
    output = tmp_path / "out.fr"
    status, _, err = translate(
        capsys, "--checkpoint", checkpoint, "--input", source, "--output", output, "--chunk-lines", "8"
    )
    assert status == 1
    assert_one_line_error(err)
    assert "in.en line 31: not UTF-8" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.en"]  # neither the output nor a temporary file


def test_a_stream_gives_its_first_translations_having_read_one_chunk_only(checkpoint):
    """What keeps memory flat: translations come out after one chunk has been read, not the input."""
    read = []

    def endless_lines():
        while True:
            read.append(1)
            yield LINES[len(read) % len(LINES)]

    stream = Translator.from_checkpoint(checkpoint).translate_stream(endless_lines(), chunk_lines=8, beam_size=1)
    first = [next(stream) for _ in range(8)]
    assert len(first) == 8 and len(read) <= 9  # itertools.islice may look one line ahead


@pytest.mark.parametrize("model", [TINY_RNN, TINY_TRANSFORMER], ids=["rnn", "transformer"])
def test_int8_weights_translate_without_a_warning_reaching_the_user(model, tmp_path):
    path = save_untrained(tmp_path / "model.pt", model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        quantized = Translator.from_checkpoint(path, quantize="int8")
        translations = quantized.translate_n_best(LINES, beam_size=3, max_len=6)
    assert [t.source for t in translations] == LINES
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in quantized.model.modules())


def test_int8_replaces_the_layers_of_the_model_it_is_given_instead_of_copying_it(checkpoint):
    """A copy of the loaded model would only hold a second fp32 model in memory."""
    model = Translator.from_checkpoint(checkpoint).model
    assert quantize_int8(model.train()) is model
    assert not any(m.training for m in model.modules())
    assert not [m for m in model.modules() if type(m) in QUANTIZED_LAYERS]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # what is left: embeddings, norms


def test_int8_next_token_distributions_stay_close_to_fp32(checkpoint):
    """Teacher-forced on fp32's own translations, the int8 model's next-token distribution is
    within a few percent total variation of fp32's (the BLEU it costs on a real model is measured
    by benchmarks/translate_speed.py)."""
    fp32 = Translator.from_checkpoint(checkpoint)  # the probability of every token the model scores
    int8 = Translator.from_checkpoint(checkpoint, quantize="int8")
    lines = [line for line in LINES if line]
    outputs = fp32.translate_n_best(lines, beam_size=1)
    position = positions_in_list(fp32.output_ids, len(fp32.trg_tok))  # the models read and score positions in it
    batch = make_batch(
        [(fp32.src_tok.encode(line), position[t.tokens[0] + [EOS]].tolist()) for line, t in zip(lines, outputs)]
    )
    with torch.inference_mode():
        p, q = (t.model(batch.src, batch.src_len, batch.trg_in).softmax(-1) for t in (fp32, int8))
    variation = 0.5 * (p - q).abs().sum(-1)[batch.trg_in != PAD]  # (real target positions,)
    assert variation.mean() < 0.03 and variation.max() < 0.1


def test_quantize_is_refused_on_a_gpu_and_for_an_unknown_kind(checkpoint):
    with pytest.raises(ValueError, match="CPU only"):
        Translator.from_checkpoint(checkpoint, "cuda", quantize="int8")
    with pytest.raises(ValueError, match="the choice is int8"):
        Translator.from_checkpoint(checkpoint, quantize="int4")


def test_bf16_translates_nearly_as_fp32_and_fp16_or_int8_with_it_are_one_line_errors(checkpoint, tmp_path, capsys):
    source = write(tmp_path / "in.en", LINES)
    status, out, err = translate(capsys, "--checkpoint", checkpoint, "--input", source, "--precision", "bf16")
    assert status == 0, err
    fp32 = Translator.from_checkpoint(checkpoint).translate(LINES, beam_size=5)
    bf16 = out.splitlines()
    assert len(bf16) == len(LINES) and sum(a == b for a, b in zip(bf16, fp32)) >= len(LINES) // 2
    for bad in (["--precision", "fp16", "--device", "cpu"], ["--precision", "bf16", "--quantize", "int8"]):
        status, _, err = translate(capsys, "--checkpoint", checkpoint, "--input", source, *bad)
        assert status == 2
        assert_one_line_error(err)


def test_several_checkpoints_translate_as_one_ensemble(checkpoint, other_checkpoint, tmp_path, capsys):
    source = write(tmp_path / "in.en", LINES)
    status, out, err = translate(capsys, "--checkpoint", checkpoint, other_checkpoint, "--input", source)
    assert status == 0, err
    expected = Translator.from_checkpoint([checkpoint, other_checkpoint]).translate(LINES, beam_size=5)
    assert out.splitlines() == expected
    alone = Translator.from_checkpoint(checkpoint).translate(LINES, beam_size=5)
    assert Translator.from_checkpoint([checkpoint, checkpoint]).translate(LINES, beam_size=5) == alone


def test_an_ensemble_of_models_with_different_vocabularies_is_one_line(checkpoint, tmp_path, capsys):
    other = save_untrained(tmp_path / "other.pt", TINY_RNN)  # its vocabulary is built from other sentences
    status, _, err = translate(capsys, "--checkpoint", checkpoint, other, "--input", write(tmp_path / "in.en", LINES))
    assert status == 2
    assert_one_line_error(err)
    assert "other.pt: its vocabulary differs" in err


def test_samples_are_reproducible_with_a_seed_and_n_best_gives_that_many(checkpoint, tmp_path, capsys):
    source = write(tmp_path / "in.en", LINES)
    runs = []
    for _ in range(2):
        status, out, err = translate(
            capsys, "--checkpoint", checkpoint, "--input", source, "--sample", "--n-best", "3", "--seed", "4",
            "--top-p", "0.9", "--temperature", "1.2",
        )  # fmt: skip
        assert status == 0, err
        runs.append(out)
    assert runs[0] == runs[1]
    numbers = [int(line.split("\t")[0]) for line in runs[0].splitlines()]
    assert numbers == [n for n in range(1, len(LINES) + 1) for _ in range(1 if not LINES[n - 1] else 3)]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--sample", "--beam", "5"], "sampling draws one token at a time: it takes no beam size"),
        (["--top-k", "5"], "tune sampling only: turn sampling on (sample=True, --sample)"),
        (["--sample", "--top-p", "0"], "top-p must be in (0, 1]"),
        (["--sample", "--temperature", "0"], "the temperature must be above 0"),
        (["--chunk-lines", "0"], "--chunk-lines must be at least 1"),
    ],
)
def test_sampling_and_streaming_options_that_make_no_sense_are_one_line(options, message, checkpoint, tmp_path, capsys):
    status, out, err = translate(
        capsys, "--checkpoint", checkpoint, "--input", write(tmp_path / "in.en", LINES), *options
    )
    assert status == 2 and out == ""
    assert_one_line_error(err)
    assert message in err
