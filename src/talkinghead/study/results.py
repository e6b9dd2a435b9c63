"""USER accuracy (paper §4): per "method (T)", the share of answers that found the fake, with a 95% Wilson score
interval over answers, the number of answers and of raters (sessions), and a bar plot (OpenCV drawing: matplotlib
is not a dependency). Chance is 1/3; lower is better (the fakes fool the raters).

Answers are checked against the study (`answers.check_answer`); a session's second answer to one triplet is left
out (the first counts); answers of another study are refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from talkinghead.study.answers import check_answer
from talkinghead.study.triplets import Study

CHANCE = 1.0 / 3.0
Z_95 = 1.959963984540054


def wilson_interval(correct: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion correct/total (95% for the default z); (0, 1) for no answers."""
    if total == 0:
        return 0.0, 1.0
    p = correct / total
    denominator = 1.0 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return max(0.0, centre - half), min(1.0, centre + half)


def study_results(study: Study, answers: Iterable[dict]) -> dict:
    """{"study", "answers", "raters", "rows": [{"row", "method", "shots", "answers", "correct", "accuracy", "low",
    "high", "raters"}], ...}: USER accuracy per "method (T)", rows in the study's order of methods."""
    triplets = study.by_id()
    seen: set[tuple[str, str]] = set()
    counted = []
    for answer in answers:
        record = check_answer(study, answer)
        if (record["session"], record["triplet"]) in seen:
            continue
        seen.add((record["session"], record["triplet"]))
        triplet = triplets[record["triplet"]]
        counted.append((triplet, record["session"], record["choice"] == triplet.fake, record["seconds"]))
    rows = []
    for method, shots in sorted({(t.method, t.shots) for t in study.triplets}, key=lambda k: (k[1], k[0])):
        mine = [c for c in counted if c[0].method == method and c[0].shots == shots]
        correct = sum(1 for c in mine if c[2])
        low, high = wilson_interval(correct, len(mine))
        rows.append({"row": f"{method} ({shots})", "method": method, "shots": shots, "answers": len(mine),
                     "correct": correct, "accuracy": correct / len(mine) if mine else None, "low": low, "high": high,
                     "raters": len({c[1] for c in mine}),
                     "median_seconds": float(np.median([c[3] for c in mine])) if mine else None})
    return {"study": study.id, "answers": len(counted), "raters": len({c[1] for c in counted}), "chance": CHANCE,
            "interval": "95% Wilson score interval over answers", "metric": "USER accuracy (lower is better)",
            "rows": rows}


def format_results(results: dict) -> str:
    """A markdown table of the results."""
    lines = [f"USER accuracy (paper §4; chance = 1/3, lower is better): {results['answers']} answers from "
             f"{results['raters']} rater(s), study {results['study']}", "",
             "| Method (T) | USER↓ | 95% interval | answers | raters |", "|---|---|---|---|---|"]
    for row in results["rows"]:
        accuracy = "n/a" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
        lines.append(f"| {row['row']} | {accuracy} | [{row['low']:.3f}, {row['high']:.3f}] | {row['answers']} | "
                     f"{row['raters']} |")
    lines += ["", "Interval: 95% Wilson score interval over answers (answers of one rater are not independent; "
                  "with few raters it is too narrow)."]
    return "\n".join(lines) + "\n"


def plot_results(results: dict, width: int = 720) -> np.ndarray:
    """Horizontal bars of USER accuracy per row with the interval and the chance line (uint8 RGB)."""
    rows = results["rows"]
    left, right, top, bar, gap = 190, 30, 46, 22, 10
    height = top + len(rows) * (bar + gap) + 40
    canvas = np.full((height, width, 3), 255, np.uint8)
    plot_w = width - left - right

    def px(value: float) -> int:
        return left + int(round(value * plot_w))

    text = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(canvas, f"USER accuracy (lower is better), {results['answers']} answers, {results['raters']} raters",
                (10, 22), text, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for k in range(6):
        x = px(k / 5)
        cv2.line(canvas, (x, top - 6), (x, height - 34), (225, 225, 225), 1)
        cv2.putText(canvas, f"{k / 5:.1f}", (x - 10, height - 16), text, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for i, row in enumerate(rows):
        y = top + i * (bar + gap)
        cv2.putText(canvas, row["row"][:26], (6, y + bar - 6), text, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        if row["accuracy"] is None:
            cv2.putText(canvas, "no answers", (left + 4, y + bar - 6), text, 0.4, (120, 120, 120), 1, cv2.LINE_AA)
            continue
        cv2.rectangle(canvas, (left, y), (px(row["accuracy"]), y + bar), (31, 119, 180), -1)
        middle = y + bar // 2
        cv2.line(canvas, (px(row["low"]), middle), (px(row["high"]), middle), (0, 0, 0), 2)
        for end in (row["low"], row["high"]):
            cv2.line(canvas, (px(end), middle - 5), (px(end), middle + 5), (0, 0, 0), 2)
    chance = px(CHANCE)
    cv2.line(canvas, (chance, top - 8), (chance, height - 34), (214, 39, 40), 1)
    cv2.putText(canvas, "chance 1/3", (chance + 4, top - 10), text, 0.4, (214, 39, 40), 1, cv2.LINE_AA)
    return canvas


def write_results(results: dict, folder: str | Path) -> dict[str, Path]:
    """``results.json``, ``results.md`` and ``results.png`` in ``folder``."""
    import json

    from talkinghead.metrics.report import save_png

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "results.json", "table": folder / "results.md", "plot": folder / "results.png"}
    paths["json"].write_text(json.dumps(results, indent=2) + "\n")
    paths["table"].write_text(format_results(results), encoding="utf-8")
    save_png(paths["plot"], plot_results(results))
    return paths
