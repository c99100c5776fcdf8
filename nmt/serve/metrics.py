"""What the service counts, in Prometheus' text format (GET /metrics), with prometheus_client.

Each app has a registry of its own, so that several apps in one process (tests) count apart.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
LATENCIES = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "nmt_requests", "Translation requests, by HTTP status", ["status"], registry=self.registry
        )
        self.sentences = Counter(
            "nmt_sentences",
            "Sentences asked for, by outcome: translated, refused (bad or too much input, full queue), "
            "failed, or abandoned (the client left or timed out)",
            ["status"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "nmt_batch_sentences", "Sentences per search batch", buckets=BATCH_SIZES, registry=self.registry
        )
        self.batch_seconds = Histogram(
            "nmt_batch_seconds", "Time to search one batch", buckets=LATENCIES, registry=self.registry
        )
        self.latency = Histogram(
            "nmt_request_seconds",
            "Time from a request's arrival to its answer",
            buckets=LATENCIES,
            registry=self.registry,
        )
        self.queue = Gauge("nmt_queue_sentences", "Sentences waiting for a batch", registry=self.registry)

    def batch_done(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)
