"""The flat-memory tests' meters (tests/_memory.py) see what tracemalloc cannot: memory held by torch tensors."""

from __future__ import annotations

import tracemalloc

import torch

from _memory import MemoryTrace, live_tensors, rss_bytes

BYTES = 64 * 2**20


def test_the_meters_see_a_kept_tensor_that_tracemalloc_misses():
    trace = MemoryTrace(every=1)
    trace.sample()
    tensors, rss = live_tensors(), rss_bytes()
    tracemalloc.start()
    kept = torch.ones(BYTES // 4)  # written, so its pages are resident
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    trace.sample()
    assert traced < BYTES // 100  # tracemalloc: torch's allocator is invisible to it
    assert live_tensors() == tensors + 1
    assert rss_bytes() - rss > BYTES * 0.9
    assert trace.growth > BYTES * 0.9 and trace.tensors[-1] == trace.tensors[0] + 1
    del kept
