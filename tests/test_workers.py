"""Batches searched side by side on the CPU (nmt.workers): the same translations and samples as
one batch at a time, in input order, each worker on its share of torch's threads."""

import threading

import pytest
import torch
from tiny_checkpoints import save_untrained

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
def translator(request, tmp_path_factory):
    path = save_untrained(tmp_path_factory.mktemp(request.param) / "model.pt", MODELS[request.param])
    return Translator.from_checkpoint(path)


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


def test_each_worker_runs_on_its_share_of_the_threads_and_torchs_count_comes_back():
    torch.set_num_threads(4)

    def where(item):
        return item, torch.get_num_threads(), threading.current_thread().name

    seen = list(in_order(where, range(10), workers=2))
    assert [item for item, _, _ in seen] == list(range(10))
    assert {threads for _, threads, _ in seen} == {2}
    assert all(name.startswith("nmt-search") for _, _, name in seen)
    assert torch.get_num_threads() == 4


def test_a_failing_batch_fails_the_whole_call_and_torchs_thread_count_comes_back():
    torch.set_num_threads(2)

    def fail_on_three(item):
        if item == 3:
            raise ValueError("batch 3 failed")
        return item

    with pytest.raises(ValueError, match="batch 3 failed"):
        list(in_order(fail_on_three, range(10), workers=2))
    assert torch.get_num_threads() == 2


def test_one_worker_per_thread_but_never_more_than_the_batches_and_one_on_a_gpu():
    torch.set_num_threads(2)
    cpu = torch.device("cpu")
    assert workers_for(cpu, batches=10) == 2
    assert workers_for(cpu, batches=1) == 1  # a single batch keeps every thread
    assert workers_for(cpu, batches=10, workers=3) == 3
    assert workers_for(torch.device("cuda"), batches=10, workers=3) == 1


def test_a_translator_refuses_fewer_than_one_worker(translator):
    with pytest.raises(ValueError, match="at least one worker"):
        Translator(translator.model, translator.src_tok, translator.trg_tok, workers=0)
