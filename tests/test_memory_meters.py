"""The flat-memory tests' meters (tests/_memory.py) see what tracemalloc cannot: memory held by torch tensors."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import torch

from _memory import live_tensors

BYTES = 64 * 2**20


def test_the_tensor_count_sees_a_kept_tensor_that_tracemalloc_misses():
    tensors = live_tensors()
    tracemalloc.start()
    kept = torch.ones(BYTES // 4)
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert traced < BYTES // 100  # tracemalloc: torch's allocator is invisible to it
    assert live_tensors() == tensors + 1
    del kept


def test_rss_sees_a_kept_tensor():
    """In a fresh process: in this one, memory freed by earlier tests may stay resident and be reused, so a new
    tensor need not raise RSS (the flat-memory tests compare runs within one process, where that is fine)."""
    script = ("from _memory import MemoryTrace; import torch; trace = MemoryTrace(every=1); trace.sample(); "
              f"kept = torch.ones({BYTES // 4}); trace.sample(); print(trace.growth, trace.tensors)")
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent, capture_output=True,
                            text=True, check=True, timeout=120)
    growth, tensors = result.stdout.split(" ", 1)
    assert int(growth) > BYTES * 0.9, result.stdout
    before, after = (int(n) for n in tensors.strip(" []\n").split(","))
    assert after == before + 1, result.stdout
