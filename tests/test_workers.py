"""Batches searched side by side by worker processes on the CPU (nmt.workers): the same
translations and samples as one batch at a time, in input order, and nothing written twice."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from tiny_checkpoints import ROOT, save_untrained

from nmt.config import ModelConfig
from nmt.corpora import demo_pairs
from nmt.translator import Translator
from nmt.workers import in_order, workers_for

MODELS = {
    "rnn": ModelConfig(emb_size=32, enc_hidden=32, dec_hidden=48),
    "transformer": ModelConfig(arch="transformer", d_model=32, heads=2, ff_size=64, enc_layers=2, dec_layers=1),
}
LINES = [en for en, _ in demo_pairs(n=40, seed=3)]


@pytest.fixture(scope="module", params=MODELS, ids=list(MODELS))
def checkpoint(request, tmp_path_factory):
    return save_untrained(tmp_path_factory.mktemp(request.param) / "model.pt", MODELS[request.param])


@pytest.fixture(scope="module")
def translator(checkpoint):
    return Translator.from_checkpoint(checkpoint)


def translate(translator, workers, **options):
    translator.workers = workers
    return translator.translate_n_best(LINES, batch_size=6, max_len=12, **options)


@pytest.mark.parametrize("search", [{"beam_size": 1}, {"beam_size": 4, "n_best": 2}], ids=["greedy", "beam"])
def test_batches_searched_side_by_side_translate_as_one_batch_at_a_time(translator, search):
    one_at_a_time = translate(translator, 1, **search)
    side_by_side = translate(translator, 3, **search)
    assert [t.source for t in side_by_side] == LINES
    for a, b in zip(one_at_a_time, side_by_side):
        assert (a.hypotheses, a.tokens, a.scores) == (b.hypotheses, b.tokens, b.scores)


def test_samples_with_a_seed_do_not_depend_on_the_workers(translator):
    def samples(workers, seed):
        return [t.hypotheses for t in translate(translator, workers, sample=True, n_best=2, seed=seed)]

    assert samples(1, seed=5) == samples(3, seed=5) == samples(3, seed=5)
    assert samples(3, seed=6) != samples(3, seed=5)


def test_workers_are_other_processes_on_one_thread_each_and_keep_the_order():
    torch.set_num_threads(2)

    def where(item):
        return item, os.getpid(), torch.get_num_threads()

    seen = list(in_order(where, range(10), workers=2))
    assert [item for item, _, _ in seen] == list(range(10))
    assert os.getpid() not in {pid for _, pid, _ in seen}
    assert {threads for _, _, threads in seen} == {1}
    assert torch.get_num_threads() == 2  # the caller's own are left as they were


def test_an_error_in_a_worker_is_raised_to_the_caller():
    def fail_on_three(item):
        if item == 3:
            raise ValueError("batch 3 failed")
        return item

    with pytest.raises(ValueError, match="batch 3 failed"):
        list(in_order(fail_on_three, range(10), workers=2))


def test_one_worker_per_thread_but_never_more_than_the_batches_and_one_on_a_gpu():
    torch.set_num_threads(2)
    cpu = torch.device("cpu")
    assert workers_for(cpu, batches=10) == 2
    assert workers_for(cpu, batches=1) == 1  # a single batch is searched here, on every thread
    assert workers_for(cpu, batches=10, workers=3) == 3
    assert workers_for(torch.device("cuda"), batches=10, workers=3) == 1


def test_a_translator_refuses_fewer_than_one_worker(translator):
    with pytest.raises(ValueError, match="at least one worker"):
        Translator(translator.model, translator.src_tok, translator.trg_tok, workers=0)


def test_standard_output_in_chunks_is_every_line_once_in_order(checkpoint, translator):
    """Each chunk forks its workers while the translations before it may still be in stdout's
    buffer: the workers must neither lose them nor write them again."""
    lines = LINES * 3
    buffered = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}

    def command(workers):
        result = subprocess.run(
            [sys.executable, "translate.py", "--checkpoint", str(checkpoint), "--beam", "2", "--batch-size", "4"]
            + ["--chunk-lines", "25", "--workers", str(workers), "--max-len", "12"],
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=buffered,  # stdout to a pipe, block-buffered as a user's would be
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    translator.workers = 1
    assert command(2) == command(1) == translator.translate(lines, beam_size=2, batch_size=4, max_len=12)


def test_workers_end_with_their_parent_when_it_is_killed():
    script = textwrap.dedent(
        """
        import os, time
        from nmt.workers import in_order

        def slow(item):
            print(os.getpid(), flush=True)
            time.sleep(60)

        list(in_order(slow, range(4), workers=2))
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    workers = [int(parent.stdout.readline()) for _ in range(2)]
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie no parent has reaped yet counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False
