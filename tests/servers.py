"""A real ``nmt serve`` process for the tests that need one: started on a free port of 127.0.0.1."""

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from tiny_checkpoints import ROOT


class Server:
    """``python -m nmt serve`` on a free port of 127.0.0.1."""

    def __init__(self, checkpoints: list[Path], log: Path, *flags: str):
        self.log = log
        models = [arg for checkpoint in checkpoints for arg in ("--checkpoint", str(checkpoint))]
        with open(log, "w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nmt", "serve", *models, "--port", "0", *flags],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.banner = []  # what it printed before it listened
        for line in self.process.stdout:
            self.banner.append(line.rstrip("\n"))
            if line.startswith("serving at "):
                self.url = line.split()[2]
                break
        else:
            pytest.fail(f"the server did not start: {log.read_text()}")
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        for _ in range(200):
            try:
                if self.get("/health")["status"] == "ready":
                    return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"the server never became ready: {self.log.read_text()}")

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            body = response.read().decode()
            return json.loads(body) if response.headers.get_content_type() == "application/json" else body

    def translate(self, text: str) -> tuple[int, dict]:
        body = json.dumps({"q": text, "source": "en", "target": "fr"}).encode()
        request = urllib.request.Request(
            self.url + "/translate", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())

    def stop(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def metric(text: str, name: str) -> float:
    [value] = [line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")]
    return float(value)
