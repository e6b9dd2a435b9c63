"""Benchmark harness: ``python benchmarks/run.py --list`` / ``--case NAME [--case NAME ...]`` / ``--all``.

Cases live in ``benchmarks/cases/<area>.py``: either functions decorated with ``@case("name")`` (from
``benchmarks.cases``) or plain functions named ``case_<name>() -> dict``. Each case returns a dict of
figures (units in the key names) and the harness prints one JSON object per case. Benchmarks compare
figures measured in the same run; they are not tests.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import cases as cases_package  # noqa: E402


def collect() -> dict:
    """Import every module in benchmarks/cases and return {name: function} (decorated or ``case_*``)."""
    found = dict(cases_package.CASES)
    for module_info in sorted(pkgutil.iter_modules(cases_package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"benchmarks.cases.{module_info.name}")
        found.update(cases_package.CASES)
        for attribute, value in vars(module).items():
            own = getattr(value, "__module__", "") == module.__name__
            if attribute.startswith("case_") and callable(value) and own:
                name = attribute[len("case_"):]
                if name in found and found[name] is not value:
                    raise SystemExit(f"benchmark case {name!r} is defined twice ({module.__name__})")
                found[name] = value
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="list the cases")
    parser.add_argument("--case", action="append", default=[], metavar="NAME", help="run a case (repeatable)")
    parser.add_argument("--all", action="store_true", help="run every case")
    args = parser.parse_args(argv)
    available = collect()
    if args.list:
        for name, function in sorted(available.items()):
            summary = (function.__doc__ or "").strip().splitlines()
            print(f"{name}: {summary[0] if summary else ''}")
        return 0
    names = sorted(available) if args.all else args.case
    if not names:
        parser.print_help()
        return 0
    unknown = [name for name in names if name not in available]
    if unknown:
        print(f"unknown case(s) {unknown}; --list shows {sorted(available)}", file=sys.stderr)
        return 2
    for name in names:
        started = time.perf_counter()
        figures = available[name]()
        result = {"case": name, **figures, "wall_s": round(time.perf_counter() - started, 2),
                  "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                              "load_average_1min": round(os.getloadavg()[0], 2)}}
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
