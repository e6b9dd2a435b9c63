"""Memory meters for the flat-memory tests that see torch's allocator.

tracemalloc sees only what goes through Python's allocator (numpy arrays included), not torch's: a loop that kept
every frame as a tensor would pass a tracemalloc test. `MemoryTrace` samples the resident set size (everything the
process holds: numpy, torch, codecs) and the torch tensors Python can reach (what a kept frame would add to).
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field

import torch


def rss_bytes() -> int:
    """The process's resident set size now, in bytes (Linux: /proc/self/statm, what CI runs on)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def live_tensors() -> int:
    """How many torch tensors (parameters included) Python objects hold now. Tensors are tracked by the garbage
    collector, so one kept per frame shows here whatever allocator holds its data."""
    return sum(1 for obj in gc.get_objects() if isinstance(obj, torch.Tensor))


@dataclass
class MemoryTrace:
    """RSS at every `sample`, and the live tensor count at every ``every``-th one (counting walks all Python
    objects: ~50 ms)."""

    every: int = 5
    rss: list[int] = field(default_factory=list)
    tensors: list[int] = field(default_factory=list)

    def sample(self) -> None:
        if len(self.rss) % self.every == 0:
            self.tensors.append(live_tensors())
        self.rss.append(rss_bytes())

    @property
    def growth(self) -> int:
        """How far RSS rose above its first sample, in bytes."""
        return max(self.rss) - self.rss[0]
