"""Freed memory stays in the process, so the next step's tensors reuse its pages without faulting."""

import subprocess
import sys
from pathlib import Path

import pytest

A_STEP_TWICE = """
import os, resource, sys, torch
from nmt.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
page = os.sysconf("SC_PAGE_SIZE")
def resident_mb():
    return int(open("/proc/self/statm").read().split()[1]) * page / 2**20
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
before = resident_mb()
blocks = [torch.ones(1_000_000) for _ in range(16)]  # 16 tensors of 4 MB, as a step's activations
del blocks
freed = resident_mb() - before
start = faults()
blocks = [torch.ones(1_000_000) for _ in range(16)]  # the next step's
print(kept, round(freed), faults() - start)
"""


def a_step_twice(mode: str) -> tuple[str, float, int]:
    """In a fresh process: the MB still resident after a step's 64 MB were freed, and the page
    faults of the next step's."""
    out = subprocess.run([sys.executable, "-c", A_STEP_TWICE, mode], capture_output=True, text=True, check=True)
    kept, resident, faults = out.stdout.split()
    return kept, float(resident), int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc's thresholds are glibc's")
def test_freed_memory_stays_in_the_process_and_the_next_step_reuses_it_without_page_faults():
    _, handed_back_resident, handed_back_faults = a_step_twice("default")
    assert handed_back_resident < 16  # glibc gave the 64 MB back to the kernel...
    assert handed_back_faults > 10_000  # ...and the next step faults its 16,384 pages of 4 kB in again
    kept, resident, faults = a_step_twice("keep")
    assert kept == "True"
    assert resident > 56
    # measured: 980 faults in most runs, 4,900 in some (where the heap's free space came apart)
    assert faults < handed_back_faults / 2


TRAIN_A_FEW_STEPS = """
import json, sys
from nmt.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
sys.path.insert(0, sys.argv[3])
from training_runs import tiny_config
from nmt.training import train
run = train(tiny_config(sys.argv[2], max_steps=6))
print(json.dumps([json.loads(line).get("train_loss") for line in open(run / "metrics.jsonl")]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc's thresholds are glibc's")
def test_training_with_freed_memory_kept_is_the_plain_run_number_for_number(tmp_path):
    """The thresholds change where memory comes from, never what is computed."""
    tests = str(Path(__file__).parent)
    runs = [
        subprocess.run(
            [sys.executable, "-c", TRAIN_A_FEW_STEPS, mode, str(tmp_path / mode), tests],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for mode in ("plain", "keep")
    ]
    assert runs[0] == runs[1] and "null" in runs[0] and len(runs[0]) > 20
