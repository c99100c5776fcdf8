"""Load on nmt serve from concurrent clients, against translating the same sentences as a file.

    python benchmarks/serve_load.py --checkpoint checkpoints/eng-fra/best.pt

Starts ``python -m nmt serve`` on a free port of 127.0.0.1 (loopback only), then sends the
first --sentences sources of the checkpoint's test split as single-sentence requests from 1, 8
and 64 concurrent clients (--clients), each client on a keep-alive connection of its own, and
reports sentences/s, latency percentiles and the mean batch the server formed (from its
/metrics). In the same run, before the server starts, the same sentences are translated as a
file: by ``Translator`` in this process (search only) and by translate.py (the whole command,
start-up included). For one client, the in-process time of each sentence alone is the latency
floor the server adds to. Every level sends a bounded number of requests and stops at
--max-seconds. Run nothing else meanwhile: figures compare only within one run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--sentences", type=int, default=640, help="test-split sources sent at each level")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=120, help="a level stops sending after this")
    parser.add_argument("--serve-args", default="", help="more nmt serve flags, e.g. '--max-wait-ms 10'")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "serve_load.jsonl")
    args = parser.parse_args()

    sources = test_sources(args.checkpoint, args.sentences)
    rows = [
        file_translation_in_process(args.checkpoint, sources, args.beam),
        translate_py(args.checkpoint, sources, args),
    ]
    alone = one_at_a_time(args.checkpoint, sources[: min(len(sources), 100)], args.beam)
    print(f"{len(sources)} sentences, beam {args.beam}; {alone['label']}: median {alone['p50_ms']:.1f} ms")
    server = start_server(args)
    try:
        for clients in args.clients:
            rows.append(load(server["url"], sources, clients=clients, max_seconds=args.max_seconds))
    finally:
        server["process"].terminate()
        server["process"].wait(timeout=60)
    baseline = rows[0]["sentences_per_s"]
    print(f"\n{'how':<34} {'sent/s':>8} {'of file':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'batch':>6}")
    for row in rows:
        latency = "".join(f" {row[k]:>8.1f}" if k in row else f" {'':>8}" for k in ("p50_ms", "p95_ms", "p99_ms"))
        batch = f" {row['mean_batch']:>6.1f}" if "mean_batch" in row else ""
        ratio = row["sentences_per_s"] / baseline
        print(f"{row['label']:<34} {row['sentences_per_s']:>8.1f} {ratio:>7.0%} {latency}{batch}")
    one = next((row for row in rows if row.get("clients") == 1), None)
    if one:
        print(f"\n1 client: median latency {one['p50_ms'] - alone['p50_ms']:+.1f} ms over Translator alone")
    with open(args.json, "a") as f:
        for row in [*rows, alone]:
            f.write(json.dumps({"checkpoint": args.checkpoint, "beam": args.beam, **row}) + "\n")


def test_sources(checkpoint: str, n: int) -> list[str]:
    from nmt.corpora import group_by_source, load_corpus
    from nmt.translator import Translator

    data = Translator.from_checkpoint(checkpoint).config.data
    return [source for source, _ in group_by_source(load_corpus(data).test)][:n]


def file_translation_in_process(checkpoint: str, sources: list[str], beam: int) -> dict:
    from nmt.translator import Translator

    translator = Translator.from_checkpoint(checkpoint)
    translator.translate(sources[:8], beam_size=beam)  # warm
    started = time.perf_counter()
    translator.translate(sources, beam_size=beam)
    return {"label": "file, Translator in process", "sentences_per_s": len(sources) / (time.perf_counter() - started)}


def translate_py(checkpoint: str, sources: list[str], args) -> dict:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "translate.py", "--checkpoint", checkpoint, "--beam", str(args.beam)],
        input="\n".join(sources) + "\n",
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return {
        "label": "file, translate.py (whole command)",
        "sentences_per_s": len(sources) / (time.perf_counter() - started),
    }


def one_at_a_time(checkpoint: str, sources: list[str], beam: int) -> dict:
    from nmt.translator import Translator

    translator = Translator.from_checkpoint(checkpoint)
    times = []
    for source in sources:
        started = time.perf_counter()
        translator.translate([source], beam_size=beam)
        times.append(1000 * (time.perf_counter() - started))
    return {"label": "one sentence alone, Translator", "p50_ms": statistics.median(times)}


def start_server(args) -> dict:
    command = [sys.executable, "-m", "nmt", "serve", "--checkpoint", args.checkpoint, "--port", "0"]
    command += ["--beam", str(args.beam), *args.serve_args.split()]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if line.startswith("serving at "):
            return {"process": process, "url": line.split()[2]}
    raise SystemExit("the server did not start")


def load(url: str, sources: list[str], *, clients: int, max_seconds: float) -> dict:
    """Every source sent once, as its own request, by ``clients`` clients taking the next one in turn."""
    before = metrics(url)
    latencies, failures, lock = [], [], threading.Lock()
    pending = iter(sources)
    stop_at = time.monotonic() + max_seconds

    def client():
        address = urlparse(url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
        while time.monotonic() < stop_at:
            with lock:
                source = next(pending, None)
            if source is None:
                break
            body = json.dumps({"q": source, "source": "en", "target": "fr"})
            started = time.perf_counter()
            connection.request("POST", "/translate", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            with lock:
                (latencies if response.status == 200 else failures).append(time.perf_counter() - started)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    after = metrics(url)
    batches = after["nmt_batch_sentences_count"] - before["nmt_batch_sentences_count"]
    batched = after["nmt_batch_sentences_sum"] - before["nmt_batch_sentences_sum"]
    quantiles = statistics.quantiles([1000 * t for t in latencies], n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "label": f"nmt serve, {clients} client{'s' if clients > 1 else ''}",
        "clients": clients,
        "requests": len(latencies),
        "failed": len(failures),
        "sentences_per_s": len(latencies) / seconds,
        "p50_ms": quantiles[49],
        "p95_ms": quantiles[94],
        "p99_ms": quantiles[98],
        "mean_batch": batched / batches if batches else 0.0,
    }


def metrics(url: str) -> dict[str, float]:
    address = urlparse(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


if __name__ == "__main__":
    main()
