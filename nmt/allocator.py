"""Keep freed memory in the process, so that each training step does not page-fault its buffers anew.

A step allocates and frees the same few-megabyte tensors every time: logits, their gradients,
the gradients of the embedding matrix. glibc's malloc serves blocks that large with fresh
``mmap`` pages and hands them back to the kernel when they are freed (and trims the heap's top
above 128 kB), so the next step touches new zero pages again, thousands of page faults a step.
Raising the two thresholds keeps such blocks in the heap for reuse, and a training step faster
(docs/experiments.rst, "Speed").
The price is that memory freed after a peak stays with the process; its peak is unchanged. The
plain version is not to call this: a run trains number for number the same either way (tested).

Only glibc (Linux) has these knobs; elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's upper bound on 64-bit: blocks up to 32 MiB come from the heap
TRIM_THRESHOLD = 1 << 30  # free memory at the heap's top is returned only beyond 1 GiB


def keep_freed_memory() -> bool:
    """Set malloc's thresholds for this process; True where they could be set (glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except AttributeError:  # not glibc, e.g. musl
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
