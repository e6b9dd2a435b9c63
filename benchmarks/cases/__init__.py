"""Benchmark cases. Register with ``@case("name")`` or name the function ``case_<name>``; see benchmarks/run.py."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

CASES: dict[str, Callable[[], dict]] = {}


def case(name: str) -> Callable[[Callable[[], dict]], Callable[[], dict]]:
    """Register a benchmark case: a function returning a dict of figures (units in the key names)."""

    def register(function: Callable[[], dict]) -> Callable[[], dict]:
        if name in CASES and CASES[name] is not function:
            raise ValueError(f"benchmark case {name!r} is registered twice")
        CASES[name] = function
        return function

    return register


def best_and_median_ms(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(best, median) wall time of ``run()`` in ms over ``repeats`` calls, after two warm-up calls."""
    run()
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times) * 1e3, statistics.median(times) * 1e3
