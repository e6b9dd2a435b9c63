"""Benchmark cases. Register with ``@case("name")`` or name the function ``case_<name>``; see benchmarks/run.py."""

from __future__ import annotations

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
