"""The server's batcher, without a server: one queue, one worker, each result back to its asker."""

import threading
import time

import pytest
from tiny_checkpoints import train_tiny

from nmt.search import SearchOptions
from nmt.serve.batcher import Batcher, Closed, Job, QueueFull
from nmt.translator import Translator

LINES = [
    "forty-two",
    "seven thousand, one hundred and six",
    "nine",
    "three hundred and twelve",
    "eleven",
    "two thousand and five",
    "sixty",
    "one hundred",
]
BEAM = Job("en-fr", SearchOptions(beam_size=3))


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    return Translator.from_checkpoint(train_tiny(tmp_path_factory.mktemp("en-fr")))


@pytest.fixture
def batches():
    return []


@pytest.fixture
def batcher(translator, batches):
    batcher = Batcher({"en-fr": translator}, max_wait=0.05, on_batch=lambda size, seconds: batches.append(size))
    yield batcher
    batcher.close(timeout=10)


def test_each_sentence_gets_what_the_translator_gives_it(batcher, translator):
    assert [t.hypotheses for t in batcher.translate(BEAM, LINES)] == [
        t.hypotheses for t in translator.translate_n_best(LINES, beam_size=3)
    ]


def test_sentences_of_concurrent_requests_share_batches_and_keep_their_own_results(batcher, translator, batches):
    results = {}

    def ask(line):
        results[line] = batcher.translate(BEAM, [line])[0].hypotheses[0]

    askers = [threading.Thread(target=ask, args=(line,)) for line in LINES]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(timeout=30)
    assert results == dict(zip(LINES, translator.translate(LINES, beam_size=3)))
    assert max(batches) > 1 and sum(batches) == len(LINES)


def test_sentences_that_need_another_search_wait_for_a_batch_of_their_own(batcher, translator, batches):
    greedy, nbest = Job("en-fr", SearchOptions(beam_size=1)), Job("en-fr", SearchOptions(beam_size=4, n_best=2))
    futures = batcher.submit(greedy, LINES[:3]) + batcher.submit(nbest, LINES[3:5]) + batcher.submit(greedy, LINES[5:])
    got = [f.result(timeout=30) for f in futures]
    assert [t.hypotheses for t in got[:3] + got[5:]] == [
        [line] for line in translator.translate(LINES[:3] + LINES[5:], beam_size=1)
    ]
    assert all(len(t.hypotheses) == 2 for t in got[3:5])
    assert sorted(batches) == [2, 6]  # the greedy sentences together, the n-best ones apart


def test_a_full_queue_refuses_a_request_whole(translator):
    batcher = Batcher({"en-fr": translator}, max_queue=4, max_wait=0)
    gate = threading.Event()
    batcher.translators["en-fr"] = _Waiting(translator, gate)  # the worker holds its first batch
    try:
        first = batcher.submit(BEAM, LINES[:1])
        time.sleep(0.1)
        batcher.submit(BEAM, LINES[1:4])  # three waiting: fits
        with pytest.raises(QueueFull, match="3 sentences are waiting; the queue holds 4"):
            batcher.submit(BEAM, LINES[4:6])
        assert batcher.queued == 3
    finally:
        gate.set()
        batcher.close(timeout=10)
    assert first[0].result().hypotheses


def test_a_cancelled_sentence_costs_no_search(translator, batches):
    gate = threading.Event()
    batcher = Batcher({"en-fr": _Waiting(translator, gate)}, on_batch=lambda size, seconds: batches.append(size))
    try:
        batcher.submit(BEAM, LINES[:1])
        time.sleep(0.1)  # the worker holds it
        gone = batcher.submit(BEAM, LINES[1:4])
        kept = batcher.submit(BEAM, LINES[4:5])
        assert all(f.cancel() for f in gone)
        gate.set()
        assert kept[0].result(timeout=30).hypotheses
    finally:
        gate.set()
        batcher.close(timeout=10)
    assert batches == [1, 1]


def test_closing_finishes_what_is_queued_then_refuses_more(translator):
    batcher = Batcher({"en-fr": translator}, max_wait=0.5)
    futures = batcher.submit(BEAM, LINES)
    assert batcher.close(timeout=30)
    assert all(f.result(timeout=0).hypotheses for f in futures)
    with pytest.raises(Closed):
        batcher.submit(BEAM, LINES[:1])
    assert not batcher.running


def test_a_batch_that_fails_fails_only_its_own_sentences(translator):
    broken = _Failing(translator)
    batcher = Batcher({"en-fr": translator, "broken": broken})
    try:
        bad = batcher.submit(Job("broken", SearchOptions()), LINES[:2])
        with pytest.raises(RuntimeError, match="the model broke"):
            bad[0].result(timeout=30)
        assert batcher.translate(BEAM, LINES[:2])[0].hypotheses  # the worker goes on
    finally:
        batcher.close(timeout=10)


class _Waiting:
    """A translator that holds its first batch until ``gate`` opens."""

    def __init__(self, translator, gate):
        self.translator, self.gate = translator, gate

    def translate_n_best(self, lines, options, **kwargs):
        self.gate.wait(timeout=30)
        return self.translator.translate_n_best(lines, options, **kwargs)


class _Failing:
    def __init__(self, translator):
        self.translator = translator

    def translate_n_best(self, lines, options, **kwargs):
        raise RuntimeError("the model broke")
