"""Several processes (torchrun, 2 CPU ranks over gloo) and gradient accumulation: the update of a
batch does not depend on how many processes or pieces compute it, stops are collective, a run
resumes on another number of processes, and a rank that runs out of memory does not hang the
others. bf16 autocast runs training and search on the CPU; the CUDA paths run where there is CUDA."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import nmt.training
from nmt.commands.train import main
from nmt.data import Share, share_of, split_by_tokens
from nmt.run_dir import LOCK
from nmt.translator import Translator

ROOT = Path(__file__).resolve().parent.parent


def tiny_run(corpus: Path, run_dir: Path, *extra: str) -> list[str]:
    """A tiny RNN without dropout (the processes' dropout masks differ from one process's), one
    thread, a loss line at every step and a deadline schedule, so that the learning rate moves."""
    flags = "--tokenizer word --emb-size 16 --enc-hidden 16 --dec-hidden 32 --dropout 0 --valid-size 10"
    flags += " --test-size 0 --valid-bleu-sentences 10 --batch-tokens 0 --batch-size 16 --threads 1"
    flags += " --log-every 1 --scheduler linear --warmup 2"
    return ["--corpus", str(corpus), *flags.split(), "--run-dir", str(run_dir), *extra]


def torchrun(argv: list[str], *, script: Path = ROOT / "train_nmt.py", **popen) -> subprocess.Popen:
    """``script`` under torchrun in 2 processes on this machine."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*command, str(script), *argv], cwd=ROOT, env=env, text=True, **popen)


def finished(process: subprocess.Popen) -> tuple[int, str]:
    _, err = process.communicate(timeout=300)
    return process.returncode, err or ""


def losses(run_dir: Path) -> list[tuple[int, float]]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["train_loss"]) for r in records if "train_loss" in r]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "last.pt", weights_only=False)["model"]


def assert_same_weights(a: Path, b: Path, atol: float) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=0, atol=atol, msg=name)


def assert_same_losses(a: Path, b: Path) -> None:
    la, lb = losses(a), losses(b)
    assert [s for s, _ in la] == [s for s, _ in lb]
    assert [x for _, x in la] == pytest.approx([x for _, x in lb], rel=1e-5)


# Cutting a batch into pieces -------------------------------------------------------------------


def test_a_batch_is_cut_into_consecutive_pieces_of_near_equal_target_tokens():
    examples = [([4] * 3, [5] * n) for n in (2, 3, 3, 4, 5, 6, 6, 7, 9, 12)]
    indices = list(range(10))
    for parts in (1, 2, 3, 4, 10):
        pieces = split_by_tokens(indices, examples, parts)
        assert len(pieces) == parts and sum(pieces, []) == indices and all(pieces)
        tokens = [sum(len(examples[i][1]) + 1 for i in piece) for piece in pieces]
        assert max(tokens) - min(tokens) <= 13  # within the longest sentence
    assert split_by_tokens([0, 1], examples, 3) == [[0], [1], []]


def test_each_process_takes_its_own_pieces_and_stand_ins_count_for_nothing():
    examples = [([4] * 3, [5] * n) for n in (2, 3, 4)]
    whole = share_of(range(3), examples, Share())
    assert whole.weights == [1.0] and whole.n_tokens == 12 and len(whole) == 3
    first, second = (share_of(range(3), examples, Share(rank, processes=2, accum_steps=2)) for rank in (0, 1))
    assert sum(first.weights) + sum(second.weights) == pytest.approx(1.0)
    assert [len(p) for p in first.pieces + second.pieces] == [1, 1, 1, 1]
    assert second.weights[-1] == 0.0  # three sentences for four pieces: one stands in
    assert first.n_tokens == second.n_tokens == 12


def test_accumulating_pieces_gives_the_update_of_the_whole_batch(corpus, tmp_path):
    assert main(tiny_run(corpus, tmp_path / "whole", "--max-steps", "8")) == 0
    assert main(tiny_run(corpus, tmp_path / "pieces", "--max-steps", "8", "--accum-steps", "3")) == 0
    assert_same_losses(tmp_path / "whole", tmp_path / "pieces")
    assert_same_weights(tmp_path / "whole", tmp_path / "pieces", atol=1e-5)


# Two processes ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_processes(corpus, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("two")
    status, err = finished(torchrun(tiny_run(corpus, run_dir, "--max-steps", "8"), stderr=subprocess.PIPE))
    assert status == 0, err
    return run_dir


def test_two_processes_end_where_one_process_computing_two_pieces_ends(corpus, two_processes, tmp_path):
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "8", "--accum-steps", "2")) == 0
    assert_same_losses(two_processes, tmp_path)
    assert_same_weights(two_processes, tmp_path, atol=1e-6)


def test_only_the_leader_writes_and_its_checkpoint_translates(two_processes):
    assert sorted(p.name for p in two_processes.iterdir()) == [LOCK, "best.pt", "last.pt", "metrics.jsonl"]
    assert [step for step, _ in losses(two_processes)] == list(range(1, 9))  # one line per step, not per process
    assert Translator.from_checkpoint(two_processes / "last.pt").translate(["I see."], beam_size=1)[0]


def wait_for_step(run_dir: Path, step: int, process: subprocess.Popen) -> None:
    metrics = run_dir / "metrics.jsonl"
    while process.poll() is None:
        text = metrics.read_text() if metrics.exists() else ""
        if sum('"train_loss"' in line for line in text.splitlines()) >= step:
            return
        time.sleep(0.01)
    pytest.fail(f"training ended (exit {process.returncode}) before step {step}")


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    assert main(tiny_run(corpus, run_dir, "--max-steps", "60")) == 0
    return run_dir


def interrupt(process: subprocess.Popen, run_dir: Path) -> int:
    """SIGTERM once ``process`` is 5 steps into training; the step its last.pt was saved at."""
    wait_for_step(run_dir, 5, process)
    process.send_signal(signal.SIGTERM)
    _, err = finished(process)
    stopped_at = torch.load(run_dir / "last.pt", weights_only=False)["progress"]["step"]
    assert 5 <= stopped_at < 60 and f"stopped by SIGTERM at step {stopped_at}" in err
    assert [step for step, _ in losses(run_dir)] == list(range(1, stopped_at + 1))
    return stopped_at


def test_a_signal_stops_both_processes_after_the_same_step_and_one_process_resumes_the_run(
    corpus, uninterrupted, tmp_path
):
    interrupt(torchrun(tiny_run(corpus, tmp_path, "--max-steps", "60"), stderr=subprocess.PIPE), tmp_path)
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "60", "--resume")) == 0
    assert_same_losses(uninterrupted, tmp_path)
    assert_same_weights(uninterrupted, tmp_path, atol=1e-5)


def test_a_run_of_one_process_resumes_on_two(corpus, uninterrupted, tmp_path):
    one = [sys.executable, str(ROOT / "train_nmt.py"), *tiny_run(corpus, tmp_path, "--max-steps", "60")]
    interrupt(subprocess.Popen(one, cwd=ROOT, text=True, stderr=subprocess.PIPE), tmp_path)
    two = torchrun(tiny_run(corpus, tmp_path, "--max-steps", "60", "--resume"), stderr=subprocess.PIPE)
    status, err = finished(two)
    assert status == 0, err
    assert_same_losses(uninterrupted, tmp_path)
    assert_same_weights(uninterrupted, tmp_path, atol=1e-5)


OUT_OF_MEMORY_ON_RANK_1 = """
    import os, sys, torch
    sys.path.insert(0, {root!r})
    from nmt.commands.train import main
    from nmt.models.seq2seq import RNNSeq2Seq

    forward, calls = RNNSeq2Seq.forward, []

    def forward_that_runs_out_of_memory_on_its_third_batch(self, *args, **kwargs):
        calls.append(self.training)
        if os.environ["RANK"] == "1" and calls.count(True) == 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return forward(self, *args, **kwargs)

    RNNSeq2Seq.forward = forward_that_runs_out_of_memory_on_its_third_batch
    sys.exit(main(sys.argv[1:]))
"""


def test_out_of_memory_on_one_process_skips_that_batch_on_both_and_the_run_goes_on(corpus, tmp_path, monkeypatch):
    script = tmp_path / "oom.py"
    script.write_text(textwrap.dedent(OUT_OF_MEMORY_ON_RANK_1.format(root=str(ROOT))))
    run = torchrun(tiny_run(corpus, tmp_path / "two", "--max-steps", "6"), script=script, stderr=subprocess.PIPE)
    status, err = finished(run)
    assert status == 0, err
    assert "out of memory at step 3 on a batch of 16 sentences" in err and "skipped" in err

    # One process computing both pieces, its second piece of the third batch out of memory, skips the same batch.
    forward, calls = sys.modules["nmt.models.seq2seq"].RNNSeq2Seq.forward, []

    def second_piece_of_the_third_batch_runs_out_of_memory(self, *args, **kwargs):
        calls.append(self.training)
        if calls.count(True) == 6:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(
        sys.modules["nmt.models.seq2seq"].RNNSeq2Seq, "forward", second_piece_of_the_third_batch_runs_out_of_memory
    )
    assert main(tiny_run(corpus, tmp_path / "one", "--max-steps", "6", "--accum-steps", "2")) == 0
    assert_same_losses(tmp_path / "two", tmp_path / "one")
    assert_same_weights(tmp_path / "two", tmp_path / "one", atol=1e-6)


RECORDING_WHO_TRAINS_SENTENCEPIECE = """
    import os, sys
    sys.path.insert(0, {root!r})
    from nmt.commands.train import main
    from nmt.spm import SpmTokenizer

    train = SpmTokenizer.train

    def recorded(*args, **kwargs):
        with open({log!r}, "a") as log:
            log.write(os.environ["RANK"] + "\\n")
        return train(*args, **kwargs)

    SpmTokenizer.train = recorded
    sys.exit(main(sys.argv[1:]))
"""


def test_only_the_leader_trains_sentencepiece_and_the_others_take_its_model(corpus, tmp_path):
    script, log = tmp_path / "spm.py", tmp_path / "who-trained"
    script.write_text(textwrap.dedent(RECORDING_WHO_TRAINS_SENTENCEPIECE.format(root=str(ROOT), log=str(log))))
    flags = ["--max-steps", "4", "--tokenizer", "spm", "--vocab-size", "300"]
    status, err = finished(torchrun(tiny_run(corpus, tmp_path / "two", *flags), script=script, stderr=subprocess.PIPE))
    assert status == 0, err
    assert log.read_text().split() == ["0"]  # one SentencePiece model (joint), trained by the leader alone
    assert main(tiny_run(corpus, tmp_path / "one", *flags, "--accum-steps", "2")) == 0
    assert_same_losses(tmp_path / "two", tmp_path / "one")  # the same vocabulary on both processes


# Number formats ----------------------------------------------------------------------------------


def test_bf16_autocast_trains_and_translates_on_the_cpu(corpus, tmp_path):
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "6", "--precision", "bf16")) == 0
    assert all(loss == loss and loss < 10 for _, loss in losses(tmp_path))
    translator = Translator.from_checkpoint(tmp_path / "last.pt", precision="bf16")
    for beam in (1, 3):
        assert len(translator.translate(["I see.", "Tom is here."], beam_size=beam)) == 2


def test_fp16_is_refused_on_the_cpu_in_one_line(corpus, tmp_path, capsys):
    assert main(tiny_run(corpus, tmp_path, "--precision", "fp16", "--device", "cpu")) == 2
    assert capsys.readouterr().err.strip() == "error: --precision fp16 needs a GPU; on the CPU use bf16"


def test_compile_compiles_the_trained_model_itself(corpus, tmp_path, monkeypatch):
    """The compilation itself takes minutes on a 2-core CPU (benchmarks/train_scaling.py --compile
    runs it); here only that the module trained and saved is the one compiled."""
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda module, *a, **k: compiled.append(type(module).__name__))
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "2", "--compile")) == 0
    assert compiled == ["RNNSeq2Seq"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_and_translation_run_on_the_gpu(corpus, tmp_path, precision):
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "6", "--device", "cuda", "--precision", precision)) == 0
    assert all(loss == loss for _, loss in losses(tmp_path))
    assert torch.backends.cuda.matmul.allow_tf32  # fp32 products on tensor cores, as README says
    translator = Translator.from_checkpoint(tmp_path / "last.pt", "cuda", precision=precision)
    assert len(translator.translate(["I see.", "Tom is here."], beam_size=3)) == 2


def strict_run(corpus: Path, run_dir: Path, device: str, precision: str) -> list[str]:
    """A tiny Transformer with label smoothing, 8 steps, a loss line every 4: the run in which
    no step but the 4th and 8th may read the device."""
    flags = "--arch transformer --d-model 32 --heads 2 --ff-size 64 --layers 1 --tokenizer word --valid-size 10"
    flags += " --test-size 0 --valid-bleu-sentences 10 --batch-tokens 0 --batch-size 16 --log-every 4"
    flags += f" --label-smoothing 0.1 --max-steps 8 --device {device} --precision {precision}"
    return ["--corpus", str(corpus), *flags.split(), "--run-dir", str(run_dir)]


class WatchedSteps(nmt.training.DeviceCallback):
    """Puts ``watch`` on from moving the batch to the last after_step callback, except in the
    steps that end a --log-every window of 4."""

    watch = staticmethod(lambda on: None)

    def before_batch(self):
        self.watch((self.learner.step + 1) % 4 != 0)
        super().before_batch()

    def after_batch(self):  # first of the after_batch callbacks: every after_step has run
        self.watch(False)


def test_a_training_step_reads_no_tensor_back_on_the_host(corpus, tmp_path, monkeypatch):
    """The CPU stand-in for the GPU test below, which CI cannot run: on a GPU, turning a tensor
    into a Python number or truth value waits for the device, so inside a step none may be."""
    watching, reads = [False], []

    def watched(name):
        read = getattr(torch.Tensor, name)

        def wrapper(tensor, *args, **kwargs):
            if watching[0]:
                reads.append(f"Tensor.{name}")
            return read(tensor, *args, **kwargs)

        return wrapper

    for name in ["item", "tolist", "__bool__", "__float__", "__int__", "__index__"]:
        monkeypatch.setattr(torch.Tensor, name, watched(name))
    monkeypatch.setattr(WatchedSteps, "watch", staticmethod(lambda on: watching.__setitem__(0, on)))
    monkeypatch.setattr(nmt.training, "DeviceCallback", WatchedSteps)
    assert main(strict_run(corpus, tmp_path, "cpu", "fp32")) == 0
    assert reads == []
    assert [step for step, _ in losses(tmp_path)] == [4, 8]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_a_training_step_on_the_gpu_never_waits_for_it(corpus, tmp_path, monkeypatch, precision):
    """From moving the batch to the step's last callback, the host only queues work: any
    operation that waits for the GPU (reading a loss, a copy from pageable memory) fails. Only
    the steps that end a --log-every window read the device."""
    strict = {True: "error", False: "default"}
    monkeypatch.setattr(WatchedSteps, "watch", staticmethod(lambda on: torch.cuda.set_sync_debug_mode(strict[on])))
    monkeypatch.setattr(nmt.training, "DeviceCallback", WatchedSteps)
    try:
        assert main(strict_run(corpus, tmp_path, "cuda", precision)) == 0
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert [step for step, _ in losses(tmp_path)] == [4, 8]
