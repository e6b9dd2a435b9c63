"""How much the shipped warp-128 model's learned parts act on real held-out clips (issue 24 item 10;
`talkinghead.evaluate.learned_parts`).

* ``learned_parts``: the shipped model, T = 8 feed-forward, 16 targets per video, one video per person, on the
  validation dataset named by ``TALKINGHEAD_VALIDATION_DATA`` (prepared with ``prepare --part validation``; the
  test part is read once per shipped model, not benchmarked). Skipped, with the reason, when it is not set.

Measured (2 CPU cores, 16 s; the 10 validation people of docs/splits/shared-dev-data.json at 128 px), mean over
videos (range): |residual flow| 0.045 px (0.038-0.059), max 0.49 px (0.44-0.57); synthesis share 1.2 %
(1.1-1.3 %); gate 0.952 (0.936-0.963); output vs mixed warp 0.35 grey levels (0.23-0.57), vs the nearest source's
mesh warp 0.65 (0.44-0.82); another person's ψ changes the output by 0.079 grey levels (0.033-0.149).
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.cases import case


@case("learned_parts")
def learned_parts() -> dict:
    """The shipped model's learned parts on the validation clips: flow in px, synthesis share, gate, grey levels."""
    data = os.environ.get("TALKINGHEAD_VALIDATION_DATA")
    if not data or not (Path(data) / "index.json").is_file():
        return {"skipped": "set TALKINGHEAD_VALIDATION_DATA to a dataset prepared with --part validation"}
    from talkinghead.evaluate.learned_parts import measure_learned_parts
    from talkinghead.shipped import shipped_model_path

    result = measure_learned_parts(shipped_model_path(), data, shots=8, targets=16)
    rows = {name: row for name, row in result["overall"].items() if row.get("mean") is not None}
    return {"videos": result["settings"]["videos"],
            **{f"{name}_mean": round(row["mean"], 4) for name, row in rows.items()},
            **{f"{name}_range": [round(row["min"], 4), round(row["max"], 4)] for name, row in rows.items()},
            **{name: round(row["auc"], 4) for name, row in result["overall"].items() if name.startswith("auc_")},
            **{f"embedding_{name}": round(value, 4) for name, value in result["overall"]["embedding"].items()}}
