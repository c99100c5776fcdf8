"""nmt serve as users run it: a real uvicorn on 127.0.0.1 in a process of its own, under
concurrent clients, and stopped by SIGTERM while it has work."""

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from servers import Server, metric
from tiny_checkpoints import ROOT, train_tiny

from nmt.commands.serve import searching_on
from nmt.corpora import demo_pairs
from nmt.serve.settings import search_threads

CLIENTS = 32
SENTENCES = list(dict.fromkeys(en for en, _ in demo_pairs(n=200, seed=3)))[:CLIENTS]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("en-fr"))


@pytest.fixture(scope="module")
def translated_by_translate_py(checkpoint, tmp_path_factory) -> list[str]:
    """What translate.py, with its defaults, gives for SENTENCES."""
    result = subprocess.run(
        [sys.executable, "translate.py", "--checkpoint", str(checkpoint)],
        input="\n".join(SENTENCES) + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def concurrently(server: Server, sentences: list[str]) -> dict[str, tuple[int, dict]]:
    """Each sentence sent by a client of its own, all starting together."""
    start, answers = threading.Barrier(len(sentences)), {}

    def client(sentence):
        start.wait()
        answers[sentence] = server.translate(sentence)

    clients = [threading.Thread(target=client, args=(s,)) for s in sentences]
    for c in clients:
        c.start()
    for c in clients:
        c.join(timeout=120)
    return answers


def test_concurrent_clients_get_what_translate_py_gives_in_batches_larger_than_one(
    checkpoint, translated_by_translate_py, tmp_path
):
    server = Server([checkpoint], tmp_path / "stderr", "--max-wait-ms", "50")
    try:
        answers = concurrently(server, SENTENCES)
        metrics = server.get("/metrics")
    finally:
        assert server.stop() == 0
    assert [answers[s] for s in SENTENCES] == [(200, {"translatedText": t}) for t in translated_by_translate_py]
    batches, sentences = metric(metrics, "nmt_batch_sentences_count"), metric(metrics, "nmt_batch_sentences_sum")
    assert sentences == CLIENTS and batches < CLIENTS  # some sentences of different clients shared a search
    assert metric(metrics, 'nmt_requests_total{status="200"}') == CLIENTS


def test_sigterm_with_requests_waiting_answers_them_all_and_exits_0(checkpoint, translated_by_translate_py, tmp_path):
    # a long wait for company keeps the sentences queued until the signal comes
    server = Server([checkpoint], tmp_path / "stderr", "--max-wait-ms", "3000")
    answers = {}
    load = threading.Thread(target=lambda: answers.update(concurrently(server, SENTENCES)))
    load.start()
    deadline = time.monotonic() + 30
    while server.get("/health")["queued"] < CLIENTS and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.stop() == 0
    load.join(timeout=60)
    log = server.log.read_text()
    assert [answers[s] for s in SENTENCES] == [(200, {"translatedText": t}) for t in translated_by_translate_py]
    assert "Shutting down" in log and "Traceback" not in log
    with pytest.raises(OSError):  # and it takes no more
        server.translate("nine")


def test_the_search_leaves_a_core_to_the_http_side_unless_told_its_threads(checkpoint, tmp_path):
    torch_default = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"], capture_output=True, text=True
    )
    for flags, threads in (((), search_threads(int(torch_default.stdout))), (("--threads", "2"), 2)):
        server = Server([checkpoint], tmp_path / "stderr", *flags)
        try:
            assert f"searching on {threads} CPU thread(s) (--threads)" in server.banner
            assert server.translate("I am cold.")[0] == 200
        finally:
            assert server.stop() == 0


def test_the_banner_names_the_gpu_a_search_runs_on_not_cpu_threads():
    assert searching_on(torch.device("cuda", 0)) == "searching on cuda:0"
    assert searching_on(torch.device("cpu")).endswith("CPU thread(s) (--threads)")


def test_a_port_already_taken_is_one_line(checkpoint, tmp_path):
    server = Server([checkpoint], tmp_path / "stderr")
    try:
        port = server.url.rsplit(":", 1)[1]
        taken = subprocess.run(
            [sys.executable, "-m", "nmt", "serve", "--checkpoint", str(checkpoint), "--port", port],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
    finally:
        server.stop()
    assert taken.returncode == 2
    assert taken.stderr.splitlines() == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use"]


def test_the_listening_socket_says_tcp_so_that_asyncio_turns_nagle_off():
    # with proto 0, asyncio leaves Nagle on, and each answer on a kept-alive connection waits 40 ms
    from nmt.commands.serve import _listen

    listening = _listen("127.0.0.1", 0)
    try:
        assert listening.proto == socket.IPPROTO_TCP
    finally:
        listening.close()


def test_a_client_that_leaves_costs_no_search(checkpoint, tmp_path):
    server = Server([checkpoint], tmp_path / "stderr", "--max-wait-ms", "1500")
    try:
        host, port = server.url.removeprefix("http://").split(":")
        body = b'{"q": "nine", "source": "en", "target": "fr"}'
        with socket.create_connection((host, int(port))) as client:
            client.sendall(
                b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            deadline = time.monotonic() + 30
            while server.get("/health")["queued"] < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
        # the client is gone before its sentence's batch was due
        while 'nmt_sentences_total{status="abandoned"} 1.0' not in server.get("/metrics"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(2)  # past the batch's due time
        metrics = server.get("/metrics")
    finally:
        assert server.stop() == 0
    assert metric(metrics, "nmt_batch_sentences_count") == 0
    assert metric(metrics, 'nmt_requests_total{status="499"}') == 1
