"""USER accuracy (paper §4): per "method (T)", the share of answers that found the fake, with a 95% interval from
a bootstrap over raters, the 95% Wilson score interval over answers beside it, the numbers of answers and of raters
(sessions), and a bar plot (OpenCV drawing: matplotlib is not a dependency). Chance is 1/3; lower is better (the
fakes fool the raters).

Why raters: the answers of one rater are not independent (a rater who spots a method's artefact spots it in every
triplet), so the Wilson interval, which treats every answer as a separate draw, is too narrow when there are few
raters. The bootstrap resamples whole raters with replacement (`BOOTSTRAP_RESAMPLES` times, numpy generator seeded
with `BOOTSTRAP_SEED`, so the numbers repeat) and takes the 2.5th and 97.5th percentiles of the pooled accuracy;
with fewer than two raters in a row it has nothing to resample and the interval is None ("n/a").

Answers are checked against the study (`answers.check_answer`); a session's second answer to one triplet is left
out (the first counts); bad lines of the answer files and answers that do not fit the study are skipped and counted
(``bad_lines``); answers of another study are refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from talkinghead.study.answers import BAD_LINE, AnswerError, check_answer
from talkinghead.study.triplets import SAME_VIDEO, Study, protocol_text

CHANCE = 1.0 / 3.0
Z_95 = 1.959963984540054
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
BOOTSTRAP_TEXT = (f"95% percentile bootstrap over raters ({BOOTSTRAP_RESAMPLES} resamples of the raters with "
                  f"replacement, seed {BOOTSTRAP_SEED}; n/a with fewer than 2 raters)")


def wilson_interval(correct: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion correct/total (95% for the default z); (0, 1) for no answers."""
    if total == 0:
        return 0.0, 1.0
    p = correct / total
    denominator = 1.0 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return max(0.0, centre - half), min(1.0, centre + half)


def rater_bootstrap_interval(correct: Sequence[int], answers: Sequence[int], resamples: int = BOOTSTRAP_RESAMPLES,
                             seed: int = BOOTSTRAP_SEED) -> tuple[float, float] | None:
    """95% percentile interval of the pooled accuracy sum(correct) / sum(answers) when the raters (one entry each,
    every one with at least one answer) are resampled with replacement; None for fewer than two raters."""
    if len(correct) != len(answers):
        raise ValueError(f"{len(correct)} correct counts for {len(answers)} answer counts")
    if len(correct) < 2:
        return None
    right, total = np.asarray(correct, np.float64), np.asarray(answers, np.float64)
    picks = np.random.default_rng(seed).integers(0, len(right), (resamples, len(right)))
    accuracy = right[picks].sum(axis=1) / total[picks].sum(axis=1)
    low, high = np.quantile(accuracy, [0.025, 0.975])
    return float(low), float(high)


def study_results(study: Study, answers: Iterable[dict]) -> dict:
    """{"study", "reals", "protocol", "answers", "raters", "bad_lines", "rows": [{"row", "method", "shots",
    "answers", "correct", "accuracy", "low", "high", "wilson_low", "wilson_high", "raters", ...}], ...}: USER
    accuracy per "method (T)" ("low"/"high": the bootstrap over raters), rows in the study's order of methods.
    ``answers``: what `read_answers` returns (bad-line markers included, so that they are counted)."""
    triplets = study.by_id()
    seen: set[tuple[str, str]] = set()
    counted = []
    skipped = []
    for answer in answers:
        if BAD_LINE in answer:
            skipped.append(f"{answer[BAD_LINE]}: {answer.get('reason')}")
            continue
        if answer.get("study", study.id) != study.id:
            raise AnswerError(f"an answer belongs to study {answer.get('study')!r}, not {study.id}: answers of "
                              "another study (another folder or --seed)?")
        try:
            record = check_answer(study, answer)
        except AnswerError as error:
            skipped.append(f"answer of session {answer.get('session')!r}: {error}")
            continue
        if (record["session"], record["triplet"]) in seen:
            continue
        seen.add((record["session"], record["triplet"]))
        triplet = triplets[record["triplet"]]
        counted.append((triplet, record["session"], record["choice"] == triplet.fake, record["seconds"]))
    rows = []
    for method, shots in sorted({(t.method, t.shots) for t in study.triplets}, key=lambda k: (k[1], k[0])):
        mine = [c for c in counted if c[0].method == method and c[0].shots == shots]
        correct = sum(1 for c in mine if c[2])
        sessions = sorted({c[1] for c in mine})
        interval = rater_bootstrap_interval([sum(1 for c in mine if c[1] == s and c[2]) for s in sessions],
                                            [sum(1 for c in mine if c[1] == s) for s in sessions])
        wilson_low, wilson_high = wilson_interval(correct, len(mine))
        rows.append({"row": f"{method} ({shots})", "method": method, "shots": shots, "answers": len(mine),
                     "correct": correct, "accuracy": correct / len(mine) if mine else None,
                     "low": interval[0] if interval else None, "high": interval[1] if interval else None,
                     "wilson_low": wilson_low, "wilson_high": wilson_high, "raters": len(sessions),
                     "median_seconds": float(np.median([c[3] for c in mine])) if mine else None})
    return {"study": study.id, "reals": study.reals, "protocol": protocol_text(study.reals),
            "left_out": list(study.left_out), "answers": len(counted), "raters": len({c[1] for c in counted}),
            "bad_lines": len(skipped), "skipped": skipped[:20], "chance": CHANCE,
            "interval": BOOTSTRAP_TEXT, "wilson": "95% Wilson score interval over answers",
            "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED, "unit": "rater (session)"},
            "metric": "USER accuracy (lower is better)", "rows": rows}


def _interval(low: float | None, high: float | None) -> str:
    return "n/a" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def format_results(results: dict) -> str:
    """A markdown table of the results, headed by the protocol (a same-video study says it is not the paper's)."""
    lines = [f"USER accuracy (paper §4; chance = 1/3, lower is better): {results['answers']} answers from "
             f"{results['raters']} rater(s), study {results['study']}", "",
             f"Protocol: **{results['reals']}**: {results['protocol']}."]
    if results["reals"] == SAME_VIDEO:
        lines.append("**Same-video reals: not the paper's protocol; do not compare with the paper's USER.**")
    if results["left_out"]:
        lines.append(f"Left out (too few real frames of other videos): {', '.join(results['left_out'])}.")
    lines += ["", "| Method (T) | USER↓ | 95% interval (raters) | 95% Wilson (answers) | answers | raters |",
              "|---|---|---|---|---|---|"]
    for row in results["rows"]:
        accuracy = "n/a" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
        lines.append(f"| {row['row']} | {accuracy} | {_interval(row['low'], row['high'])} | "
                     f"{_interval(row['wilson_low'], row['wilson_high'])} | {row['answers']} | {row['raters']} |")
    lines += ["", f"Interval: {results['interval']}. The Wilson interval treats every answer as independent; the "
                  "answers of one rater are not, so it is too narrow with few raters.",
              f"Bad lines skipped: {results['bad_lines']}" + (f" ({'; '.join(results['skipped'])})"
                                                              if results["skipped"] else "") + "."]
    return "\n".join(lines) + "\n"


def plot_results(results: dict, width: int = 720) -> np.ndarray:
    """Horizontal bars of USER accuracy per row with the interval over raters and the chance line (uint8 RGB); a
    same-video study says so in its title."""
    rows = results["rows"]
    left, right, top, bar, gap = 190, 30, 46, 22, 10
    height = top + len(rows) * (bar + gap) + 40
    canvas = np.full((height, width, 3), 255, np.uint8)
    plot_w = width - left - right

    def px(value: float) -> int:
        return left + int(round(value * plot_w))

    text = cv2.FONT_HERSHEY_SIMPLEX
    title = f"USER accuracy (lower is better), {results['answers']} answers, {results['raters']} raters"
    if results.get("reals") == SAME_VIDEO:
        title += ", SAME-VIDEO reals"
    cv2.putText(canvas, title, (10, 22), text, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
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
        if row["low"] is None:  # one rater: no interval over raters
            continue
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
