"""Training throughput against the number of processes and the number format, in one run.

    python benchmarks/train_scaling.py [--steps 150] [--processes 1 2] [--arch rnn transformer] [--bf16] [--compile]

For each architecture (its default recipe, on the real corpus): target tokens/s with 1, 2, ...
processes on this machine (torchrun, gloo, the machine's cores shared out evenly); with
--accum-steps 2 against 1 (the same update in pieces: what it costs); and with --bf16, one
process in bf16 (slow on a CPU without native bf16 arithmetic: AVX512-BF16 or AMX); with
--compile, one process with torch.compile (its compilation included in the wall time, not in
tokens/s). tokens/s is read from metrics.jsonl, leaving out the first window of --log-every
steps (start-up); the global batch, and so the work per step, is the same in every
configuration. Scaling efficiency is N-process tokens/s / (N x 1-process tokens/s), the usual
definition, which on a machine whose cores one process already uses is at most 1 / N.

A table on stdout, one JSON line per configuration appended to --json. Figures compare only
within one run on one machine: run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def train(arch: str, processes: int, steps: int, log_every: int, extra: list[str]) -> dict:
    """One short training run; its mean tokens/s after the first log window."""
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as run_dir:
        flags = ["--arch", arch, "--max-steps", str(steps), "--log-every", str(log_every), "--run-dir", run_dir]
        flags += ["--valid-bleu-sentences", "1", "--threads", str(max(1, cores // processes)), *extra]
        launcher = [sys.executable]
        if processes > 1:
            launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes)]
        started = time.monotonic()
        subprocess.run([*launcher, str(ROOT / "train_nmt.py"), *flags], cwd=ROOT, check=True, capture_output=True)
        seconds = time.monotonic() - started
        lines = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    rates = [r["tokens_per_s"] for r in lines if "tokens_per_s" in r][1:]
    return {"tokens_per_s": sum(rates) / len(rates), "wall_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--arch", nargs="+", default=["rnn", "transformer"])
    parser.add_argument("--bf16", action="store_true", help="also one process in bf16")
    parser.add_argument("--compile", action="store_true", help="also one process with --compile")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "train_scaling.jsonl")
    args = parser.parse_args()

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "commit": commit.stdout.strip(),
    }
    print(f"{'arch':<12} {'configuration':<22} {'tok/s':>8} {'vs base':>8} {'efficiency':>10}")
    for arch in args.arch:
        configurations = [(f"{n} process{'es' if n > 1 else ''}", n, []) for n in args.processes]
        configurations += [("1 process, accum 2", 1, ["--accum-steps", "2"])]
        if args.bf16:
            configurations += [("1 process, bf16", 1, ["--precision", "bf16"])]
        if args.compile:
            configurations += [("1 process, compile", 1, ["--compile"])]
        base = None
        for name, processes, extra in configurations:
            result = train(arch, processes, args.steps, args.log_every, extra)
            base = base or result["tokens_per_s"]
            ratio = result["tokens_per_s"] / base
            efficiency = f"{ratio / processes:.2f}" if processes > 1 else ""
            print(f"{arch:<12} {name:<22} {result['tokens_per_s']:>8.0f} {ratio:>7.2f}x {efficiency:>10}", flush=True)
            record = {"arch": arch, "configuration": name, "processes": processes, "flags": extra, **result}
            with open(args.json, "a") as f:
                f.write(json.dumps({**record, "ratio_to_1_process": ratio, "steps": args.steps, **machine}) + "\n")


if __name__ == "__main__":
    main()
