"""Freed buffers stay in the process: training steps do not page-fault their tensors anew each time."""

import subprocess
import sys

import pytest

TRAINING_STEPS = """
import resource, sys, torch
from nmt.allocator import keep_freed_memory
from nmt.config import ModelConfig
from nmt.models.seq2seq import RNNSeq2Seq
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
torch.manual_seed(0)
model = RNNSeq2Seq(ModelConfig(), src_vocab_size=4000, trg_vocab_size=4000).train()  # the default sizes
src, trg = torch.randint(4, 4000, (64, 15)), torch.randint(4, 4000, (64, 16))
def step():
    model(src, torch.full((64,), 15), trg).logsumexp(-1).sum().backward()
step()  # the first step's pages fault in either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    step()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> tuple[str, int]:
    """Minor page faults of four training steps after a first one, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", TRAINING_STEPS, mode], capture_output=True, text=True, check=True)
    kept, faults = out.stdout.split()
    return kept, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc's thresholds are glibc's")
def test_training_steps_reuse_freed_pages_once_freed_memory_is_kept():
    _, default_faults = page_faults("default")
    kept, kept_faults = page_faults("keep")
    assert kept == "True"
    assert kept_faults < default_faults / 3, (kept_faults, default_faults)
