"""Evaluation reports: per-video values aggregated to a mean and a 95% interval, JSON, a markdown table in the
layout of the paper's Table 1 (rows "method (T)" grouped by T, columns metrics), contact sheets and metric-vs-T
plots (drawn with OpenCV, no matplotlib), and a visible flag on any model that does not beat both baselines.

Intervals: Student-t intervals over videos, mean ± t_{(1+c)/2, n-1} · s / √n with the sample standard deviation s
(ddof 1); videos are the independent units (frames of one video are averaged first by the caller). A metric with
one video has no interval (low = high = None). Values that are None (a face not found, a metric unavailable) are
left out and counted as ``missing``.

Flagging: a model row (any method not in ``baselines``) "does not beat" a baseline on a metric when its mean is
not strictly better (higher for ↑, lower for ↓, closer to 1 for Sharpness →1) or is missing while the baseline's
is not. The row is flagged when
it does not beat both baselines on any of the ``primary_metrics`` (default SSIM, PSNR, L1: reconstruction fidelity,
which a copy or a warp of a real frame already achieves in part), or when a baseline is absent at its T. Every
such cell is also marked ⚠ in the table, on all metrics (copy-source usually wins CSIM, being a real frame).

Paired differences: the per-method intervals include how much videos differ from each other (a hard video is
hard for every method), so two methods a hair apart overlap whatever the truth. Each model row therefore also
carries, per baseline and metric, the difference model − baseline on every video both have, its mean and Student-t
interval over those videos, and on how many videos the model is ahead and behind (``row["versus"]``; the table's
second part). Measured on the held-out split: fine-tuned T = 8 SSIM − mesh warp's is +0.0032 ± 0.0017, ahead on 12
of 12 videos, while the two per-method intervals (± 0.053) overlap entirely.

Shares of frames (`FRAME_SHARES`: the teeth of `metrics.mouth`) are pooled over all the frames they count (n =
frames; a video with 1 such frame weighs 1 frame, not 1 video) with a delete-one-video jackknife (`pooled_share`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import stats

BASELINES = ("copy-source", "mesh-warp", "mesh-warp+blur", "fixed-blend")
"""Every baseline row: each model row is paired against each of them."""
FLAG_BASELINES = ("copy-source", "mesh-warp")
"""The baselines a model must beat not to be flagged (a real frame copied, and warped)."""
SMOOTHING_BASELINES = ("mesh-warp+blur", "fixed-blend")
"""Baselines that gain on the mesh warp with nothing learned (a blur, a fixed blend): where a model's gain over the
mesh warp is also theirs, it is not a learning gain, and the report says so (`learning_gain_notes`)."""
PRIMARY_METRICS = ("ssim", "psnr", "l1")
FLAG = "⚠"


@dataclass(frozen=True)
class MetricInfo:
    label: str
    higher_is_better: bool
    digits: int
    target: float | None = None
    """When set, the better value is the one closer to it (``higher_is_better`` is then not used)."""

    @property
    def arrow(self) -> str:
        return f"→{self.target:g}" if self.target is not None else ("↑" if self.higher_is_better else "↓")


# Column order of the table; metrics not present in the records are left out.
METRICS: dict[str, MetricInfo] = {
    "fid": MetricInfo("FID", False, 1),
    "kid": MetricInfo("KID", False, 4),
    # metrics.realism: the offline Fréchet distance and KID, labelled as what they are wherever they are shown
    "fd_mobilenet": MetricInfo("FD-MobileNetV2 (not comparable with published FID)", False, 2),
    "kid_mobilenet": MetricInfo("KID-MobileNetV2 (not comparable with published KID)", False, 4),
    "sharpness": MetricInfo("Sharpness", True, 3, target=1.0),  # Var(∇²output) / Var(∇²truth): < 1 is blurrier
    "ssim": MetricInfo("SSIM", True, 3),
    "psnr": MetricInfo("PSNR", True, 2),
    "l1": MetricInfo("L1", False, 4),
    "csim": MetricInfo("CSIM", True, 3),
    # metrics.identity (dlib only): descriptor distance and the share of frames under dlib's same-person 0.6
    "identity_distance": MetricInfo("ID dist", False, 3),
    "verified": MetricInfo("Verified@0.6", True, 3),
    # evaluate.scoring: CSIM and AKD over the frames every method's face is found in, and the faces lost
    "paired_csim": MetricInfo("CSIM same frames", True, 3),
    "paired_identity_distance": MetricInfo("ID dist same frames", False, 3),
    "paired_verified": MetricInfo("Verified@0.6 same frames", True, 3),
    "akd": MetricInfo("AKD", False, 2),
    "paired_akd": MetricInfo("AKD same frames", False, 2),
    "normalized_akd": MetricInfo("NAKD", False, 4),
    "akd_independent": MetricInfo("AKD independent", False, 2),  # evaluate.scoring: a detector other than dlib
    "mkr": MetricInfo("MKR", False, 3),
    "lpips": MetricInfo("LPIPS", False, 3),
    "jitter_ratio": MetricInfo("Jitter", False, 2),
    # metrics.temporal: consecutive frames of a window, against the real video's change
    "pop_rate": MetricInfo("Pop rate", False, 3),
    "excess_change": MetricInfo("Excess change", False, 2),
    "change_ratio": MetricInfo("Change ratio", True, 2, target=1.0),
    # metrics.mouth: the target's mouth region
    "mouth_l1": MetricInfo("Mouth L1", False, 4),
    "mouth_ssim": MetricInfo("Mouth SSIM", True, 3),
    "mouth_sharpness": MetricInfo("Mouth sharpness", True, 3, target=1.0),
    "fd_mouth": MetricInfo("Mouth FD-MobileNetV2", False, 2),
    # metrics.mouth: teeth (issue 25's targets: shown >= 0.5, invented <= 0.2); pooled over frames (`pooled_share`)
    "teeth_shown": MetricInfo("Teeth shown (truth has teeth)", True, 3),
    "teeth_invented": MetricInfo("Teeth invented (truth has none)", False, 3),
    # metrics.eyes: the target's brows-and-eyes region (a blink on the eyes-closed split)
    "eye_l1": MetricInfo("Eye L1", False, 4),
    "eye_ssim": MetricInfo("Eye SSIM", True, 3),
    "eye_sharpness": MetricInfo("Eye sharpness", True, 3, target=1.0),
    "eye_flecks": MetricInfo("Eye white flecks", False, 4),  # tooth-white pixels the truth has not
}
FRAME_SHARES = ("teeth_shown", "teeth_invented")
"""Per-frame 1/0 metrics pooled over every counted frame of every video (`pooled_share`), not averaged by video."""
FRAME_COUNT = "_frames"
"""``<name>_frames`` in a video's record: how many of its frames the share ``<name>`` (of `FRAME_SHARES`) counts."""


def metric_info(name: str) -> MetricInfo:
    if name not in METRICS:
        raise ValueError(f"unknown metric '{name}': known metrics are {', '.join(METRICS)}")
    return METRICS[name]


@dataclass(frozen=True)
class Interval:
    """Mean and confidence interval of one metric over videos."""

    mean: float | None
    low: float | None
    high: float | None
    n: int
    missing: int


def mean_interval(values: Iterable[float | None], confidence: float = 0.95) -> Interval:
    """Mean and Student-t confidence interval of the non-None values."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    values = list(values)
    present = np.array([v for v in values if v is not None], dtype=np.float64)
    missing = len(values) - len(present)
    if present.size == 0:
        return Interval(None, None, None, 0, missing)
    mean = float(present.mean())
    if present.size == 1 or not np.all(np.isfinite(present)):
        return Interval(mean, None, None, int(present.size), missing)
    half = float(stats.t.ppf((1 + confidence) / 2, present.size - 1) * present.std(ddof=1) / math.sqrt(present.size))
    return Interval(mean, mean - half, mean + half, int(present.size), missing)


def pooled_share(records: Sequence[dict], name: str, confidence: float = 0.95) -> dict:
    """A per-frame 1/0 metric pooled over frames: of all the frames the records count (``metrics[name + "_frames"]``;
    ``metrics[name]`` is the share over them), the share scoring 1: ``{"mean", "low", "high", "se", "n": frames,
    "hits", "videos", "missing": records counting none, "interval"}``. Interval: delete-one-video jackknife (videos
    are the independent units), Student-t quantiles; None under 2 videos."""
    counted = []
    for record in records:
        share, frames = record["metrics"].get(name), record["metrics"].get(name + FRAME_COUNT)
        if share is not None and frames is None:
            raise ValueError(f"{name} of {record.get('video')} has no {name + FRAME_COUNT}: cannot pool it")
        if share is not None and frames:
            counted.append((share * frames, int(frames)))
    hits, frames = sum(h for h, _ in counted), sum(f for _, f in counted)
    entry = {"mean": hits / frames if frames else None, "low": None, "high": None, "se": None, "n": frames,
             "hits": round(hits), "videos": len(counted), "missing": len(records) - len(counted),
             "interval": f"delete-one-video jackknife, {round(confidence * 100)}% Student-t"}
    if len(counted) >= 2:
        left_out = np.array([(hits - h) / (frames - f) for h, f in counted])
        se = float(np.sqrt((len(counted) - 1) / len(counted) * ((left_out - left_out.mean()) ** 2).sum()))
        half = float(stats.t.ppf((1 + confidence) / 2, len(counted) - 1)) * se
        entry.update(low=entry["mean"] - half, high=entry["mean"] + half, se=se)
    return entry


def _better(a: float | None, b: float | None, higher_is_better: bool, target: float | None = None) -> bool:
    """Whether value a strictly beats value b (a missing a never beats; a missing b is beaten by any a); with a
    ``target``, the one closer to it beats."""
    if a is None:
        return False
    if b is None:
        return True
    if target is not None:
        return abs(a - target) < abs(b - target)
    return a > b if higher_is_better else a < b


def build_report(records: Sequence[dict], set_metrics: dict[tuple[str, int], dict[str, dict]] | None = None,
                 baselines: Sequence[str] = BASELINES, primary_metrics: Sequence[str] = PRIMARY_METRICS,
                 confidence: float = 0.95, metadata: dict | None = None,
                 flag_baselines: Sequence[str] = FLAG_BASELINES) -> dict:
    """Aggregate per-video records into the report dictionary (what ``write_json`` writes).

    records: ``{"video": str, "method": str, "shots": int, "metrics": {name: float | None}}``, one per
    (video, method, T), each metric already averaged over that video's frames.
    set_metrics: metrics computed over a whole set (FID), ``{(method, T): {name: {"value": float | None, ...}}}``;
    a None value must carry ``"unavailable": reason``; "low"/"high" (and "se", "interval": how they were made) are
    kept when given, else the entry has no interval.
    """
    set_metrics = set_metrics or {}
    keys = sorted({(r["method"], int(r["shots"])) for r in records} | set(set_metrics))
    names = [m for m in METRICS if any(m in r["metrics"] for r in records) or
             any(m in v for v in set_metrics.values())]
    counts = {name + FRAME_COUNT for name in FRAME_SHARES}
    for record in records:
        for name in record["metrics"]:
            if name not in counts:
                metric_info(name)
    rows = []
    for method, shots in keys:
        mine = [r for r in records if r["method"] == method and int(r["shots"]) == shots]
        per_video = {name: pooled_share(mine, name, confidence) if name in FRAME_SHARES else
                     asdict(mean_interval((r["metrics"].get(name) for r in mine), confidence))
                     for name in names if any(name in r["metrics"] for r in mine)}
        for name, value in set_metrics.get((method, shots), {}).items():
            metric_info(name)
            if value.get("value") is None and not value.get("unavailable"):
                raise ValueError(f"set metric '{name}' of {method} (T={shots}) has no value and no reason")
            # an interval the set metric brings (FD/KID: delete-one-video jackknife) passes through; else none
            entry = {"mean": value.get("value"), "low": value.get("low"), "high": value.get("high"),
                     "n": value.get("num_fake", 0), "missing": 0}
            entry.update({k: value[k] for k in ("se", "interval", "unavailable") if k in value})
            per_video[name] = entry
        rows.append({"method": method, "shots": shots, "is_baseline": method in baselines,
                     "videos": len({r["video"] for r in mine}), "metrics": per_video})
    _flag(rows, [b for b in baselines if b in flag_baselines], primary_metrics)
    _versus(rows, records, baselines, confidence)
    order = {name: i for i, name in enumerate(baselines)}
    rows.sort(key=lambda row: (row["shots"], 0 if row["is_baseline"] else 1, order.get(row["method"], 0),
                               row["method"]))
    return {"confidence": confidence, "interval": "student-t over videos", "baselines": list(baselines),
            "flag_baselines": [b for b in baselines if b in flag_baselines],
            "primary_metrics": list(primary_metrics), "metrics": names, "metadata": metadata or {},
            "learning_gain": learning_gain_notes(rows), "rows": rows, "per_video": list(records)}


def learning_gain_notes(rows: Sequence[dict], reference: str = "mesh-warp",
                        smoothing: Sequence[str] = SMOOTHING_BASELINES) -> list[str]:
    """Per model row, the metrics where it is ahead of ``reference`` (paired mean over videos) but NOT ahead of a
    smoothing baseline, which learns nothing: that gain is reached without learning. Rows need ``versus``
    (`_versus`). Metrics with a target value (Sharpness →1) are left out: a difference alone cannot say which side
    of the target either value is on."""
    notes = []
    for row in rows:
        versus = row.get("versus", {})
        if row["is_baseline"] or reference not in versus:
            continue
        for name, mine in versus[reference].items():
            info = metric_info(name)
            if info.target is not None or mine["mean"] is None or not _better(mine["mean"], 0.0, info.higher_is_better):
                continue
            matched = [f"{baseline} (model − it: {theirs['mean']:+.{info.digits + 1}f})" for baseline in smoothing
                       if (theirs := versus.get(baseline, {}).get(name)) is not None and theirs["mean"] is not None
                       and not _better(theirs["mean"], 0.0, info.higher_is_better)]
            if matched:
                notes.append(f"{row['method']} (T={row['shots']}): its {info.label} gain over {reference} "
                             f"({mine['mean']:+.{info.digits + 1}f}) is also reached by {' and '.join(matched)}: "
                             "not a learning gain")
    return notes


def _flag(rows: list[dict], baselines: Sequence[str], primary_metrics: Sequence[str]) -> None:
    for row in rows:
        if row["is_baseline"]:
            continue
        references = {r["method"]: r for r in rows
                      if r["method"] in baselines and r["is_baseline"] and r["shots"] == row["shots"]}
        not_beaten: dict[str, list[str]] = {}
        for name, value in row["metrics"].items():
            info = metric_info(name)
            losers = [b for b, ref in references.items()
                      if ref["metrics"].get(name, {}).get("mean") is not None
                      and not _better(value["mean"], ref["metrics"][name]["mean"], info.higher_is_better,
                                         info.target)]
            if losers:
                not_beaten[name] = losers
        absent = [b for b in baselines if b not in references]
        failed = [name for name in primary_metrics if name in not_beaten]
        reasons = []
        if failed:
            reasons.append("does not beat " + "; ".join(f"{', '.join(not_beaten[n])} on {metric_info(n).label}"
                                                        for n in failed))
        if absent:
            reasons.append(f"baseline(s) {', '.join(absent)} missing at T={row['shots']}")
        row["not_beaten"] = not_beaten
        row["flagged"] = bool(reasons)
        row["flag_reason"] = "; ".join(reasons)


def paired_difference(mine: Sequence[dict], theirs: Sequence[dict], name: str, higher_is_better: bool,
                      confidence: float = 0.95, target: float | None = None) -> dict:
    """The difference mine − theirs of metric ``name`` over the videos where both records have a value: mean,
    Student-t interval (`mean_interval`) and the number of videos where mine is ahead and behind (``higher_is_better``
    or, with a ``target``, closer to it). Records: one per video (``{"video", "metrics"}``)."""
    their = {r["video"]: r["metrics"].get(name) for r in theirs}
    pairs = [(r["metrics"][name], their[r["video"]]) for r in mine
             if r["metrics"].get(name) is not None and their.get(r["video"]) is not None]
    interval = asdict(mean_interval((a - b for a, b in pairs), confidence))
    ahead = sum(_better(a, b, higher_is_better, target) for a, b in pairs)
    behind = sum(_better(b, a, higher_is_better, target) for a, b in pairs)
    return {**interval, "ahead": ahead, "behind": behind}


def _versus(rows: list[dict], records: Sequence[dict], baselines: Sequence[str], confidence: float) -> None:
    """``row["versus"][baseline][metric]``: `paired_difference` of every model row against each baseline at its T."""
    for row in rows:
        if row["is_baseline"]:
            continue
        mine = [r for r in records if r["method"] == row["method"] and int(r["shots"]) == row["shots"]]
        row["versus"] = {}
        for baseline in baselines:
            theirs = [r for r in records if r["method"] == baseline and int(r["shots"]) == row["shots"]]
            if not theirs:
                continue
            names = [n for n in METRICS
                     if any(n in r["metrics"] for r in mine) and any(n in r["metrics"] for r in theirs)]
            row["versus"][baseline] = {n: paired_difference(mine, theirs, n, metric_info(n).higher_is_better,
                                                            confidence, metric_info(n).target) for n in names}


def versus_table(report: dict, baseline: str) -> str:
    """Markdown: one row per model "method (T)", one column per metric, the cell "difference ± half-width (ahead/
    behind videos)" against ``baseline``; empty when no row has that baseline."""
    rows = [r for r in report["rows"] if baseline in r.get("versus", {})]
    if not rows:
        return ""
    names = [n for n in report["metrics"] if any(n in r["versus"][baseline] for r in rows)]
    lines = [f"| Method (T) − {baseline} | " + " | ".join(f"{metric_info(n).label}{metric_info(n).arrow}"
                                                           for n in names) + " |", "|" + "---|" * (len(names) + 1)]
    for row in rows:
        cells = []
        for name in names:
            value = row["versus"][baseline].get(name)
            if not value or value["mean"] is None:
                cells.append("n/a")
                continue
            digits = metric_info(name).digits + 1
            spread = "" if value["low"] is None else f" ± {(value['high'] - value['low']) / 2:.{digits}f}"
            cells.append(f"{value['mean']:+.{digits}f}{spread} ({value['ahead']}/{value['behind']})")
        lines.append(f"| {row['method']} ({row['shots']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "inf" (PSNR of identical images), "nan"
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def write_json(report: dict, path: str | Path) -> Path:
    """Write the report as strict JSON (non-finite floats become the strings "inf"/"nan")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe(report), indent=2, allow_nan=False, ensure_ascii=False) + "\n")
    return path


def _cell(value: dict, info: MetricInfo) -> str:
    if value.get("unavailable"):
        return "unavailable"
    mean = value.get("mean")
    if mean is None:
        return "n/a"
    if value.get("low") is None:
        return f"{mean:.{info.digits}f}"
    return f"{mean:.{info.digits}f} ± {(value['high'] - value['low']) / 2:.{info.digits}f}"


def set_metric_notes(report: dict) -> list[str]:
    """Footer lines for the identity-distance and set-metric columns: how their intervals were made (not the
    Student-t over videos), that MobileNetV2 is also the training content network, and why an ArcFace report has
    no ID dist / Verified@0.6."""
    from talkinghead.metrics.identity import NO_ARCFACE_THRESHOLD
    from talkinghead.metrics.realism import TRAINING_NETWORK_NOTE

    names, notes = report["metrics"], []
    made = {(metric_info(n).label, v["interval"]) for row in report["rows"] for n, v in row["metrics"].items()
            if v.get("interval")}
    for interval in sorted({i for _, i in made}):
        notes.append(f"{', '.join(sorted(label for label, i in made if i == interval))}: one value over all "
                     f"target frames, ± half-width of its {interval} interval.")
    if any(n in names for n in ("fd_mobilenet", "kid_mobilenet", "fd_mouth")):  # all on MobileNetV2's features
        notes.append(TRAINING_NETWORK_NOTE)
    if "identity_distance" in names:
        notes.append("ID dist: Euclidean distance of dlib's face descriptors to the references CSIM uses (dlib's "
                     "metric); Verified@0.6: the share of frames under dlib's same-person threshold 0.6.")
    elif "csim" in names and report.get("metadata", {}).get("identity_backend") == "arcface":
        notes.append(NO_ARCFACE_THRESHOLD + ".")
    return notes


def markdown_table(report: dict) -> str:
    """Table 1 layout: one row per "method (T)", grouped by T, one column per metric (arrow = better); below it
    the interval and flags explained, the paired differences against each baseline (`versus_table`), then
    ``metadata["notes"]`` (what the rows are, early stopping) as a list."""
    names = report["metrics"]
    header = "| Method (T) | " + " | ".join(f"{metric_info(n).label}{metric_info(n).arrow}" for n in names) + " |"
    lines = [header, "|" + "---|" * (len(names) + 1)]
    notes = []
    for row in report["rows"]:
        label = f"{row['method']} ({row['shots']})"
        if row.get("flagged"):
            label = f"{FLAG} {label}"
            notes.append(f"- {FLAG} {row['method']} (T={row['shots']}): {row['flag_reason']}")
        cells = []
        for name in names:
            value = row["metrics"].get(name, {})
            text = _cell(value, metric_info(name)) if value else "n/a"
            if name in FRAME_SHARES and value.get("mean") is not None:
                text += f" (n={value['n']})"
            if name in row.get("not_beaten", {}):
                text += f" {FLAG}"
            if value.get("unavailable") and value["unavailable"] not in " ".join(notes):
                notes.append(f"- {metric_info(name).label} unavailable: {value['unavailable']}")
            cells.append(text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    confidence = round(report["confidence"] * 100)
    flag_baselines = report.get("flag_baselines", report["baselines"])
    footer = [f"Mean ± half-width of the {confidence}% Student-t interval over videos. {FLAG} on a cell: does not "
              f"beat both baselines ({', '.join(flag_baselines)}) on that metric; {FLAG} on a row: flagged "
              f"(primary metrics: {', '.join(metric_info(n).label for n in report['primary_metrics'])})."]
    if any(n in names for n in ("mkr", "paired_akd", "paired_csim")):
        footer.append("CSIM and AKD average each method's frames with a face found; \"same frames\": the frames "
                      "where every method's face is found; MKR: the share of frames with a face in the truth and "
                      "none found in the output.")
    footer += set_metric_notes(report)
    if any(n in names for n in FRAME_SHARES):
        from talkinghead.metrics.mouth import TEETH_NOTE
        footer.append(TEETH_NOTE)
    stated = [f"- {note}" for note in report.get("metadata", {}).get("notes", [])]
    if report.get("learning_gain"):
        stated += ["", "Gains over the mesh warp that a blur or a fixed blend also reaches (no learning needed):"]
        stated += [f"- {note}" for note in report["learning_gain"]]
    paired = []
    for baseline in report["baselines"]:
        if table := versus_table(report, baseline):
            paired += ["", f"Paired against {baseline}: model − {baseline} on each video both have, mean ± "
                           f"half-width of the {confidence}% Student-t interval over videos (videos where the model "
                           "is ahead/behind).", "", table]
    return "\n".join(lines + [""] + footer + ([""] + notes if notes else []) + paired
                     + ([""] + stated if stated else [])) + "\n"


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write a uint8 RGB image as PNG (creating the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path


def _label(text: str, width: int, height: int = 22) -> np.ndarray:
    strip = np.full((height, width, 3), 255, np.uint8)
    scale = 0.45
    (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    while w > width - 4 and scale > 0.25:
        scale -= 0.05
        (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.putText(strip, text, (max(2, (width - w) // 2), height - 7), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                cv2.LINE_AA)
    return strip


def contact_sheet(sources: np.ndarray | Sequence[np.ndarray], ground_truth: Sequence[np.ndarray],
                  outputs: dict[str, Sequence[np.ndarray]], cell: int = 128) -> np.ndarray:
    """A grid, one row per ground-truth frame: source | ground truth | each method, with a header of names.

    sources: one image for all rows, or one per row (e.g. the most similar source frame). Images are uint8 RGB of
    any size, resized to ``cell`` x ``cell``. Returns uint8 RGB.
    """
    rows = len(ground_truth)
    if isinstance(sources, np.ndarray) and sources.ndim == 3:
        sources = [sources] * rows
    if len(sources) != rows or any(len(images) != rows for images in outputs.values()):
        raise ValueError(f"contact_sheet: {rows} ground-truth frames but {len(sources)} sources and "
                         f"{ {k: len(v) for k, v in outputs.items()} } outputs")
    columns = {"source": sources, "ground truth": ground_truth, **outputs}

    def fit(image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"contact_sheet: expected uint8 RGB images, got {image.dtype} {image.shape}")
        return cv2.resize(image, (cell, cell), interpolation=cv2.INTER_AREA) if image.shape[:2] != (cell, cell) \
            else image

    header = np.concatenate([_label(name, cell) for name in columns], axis=1)
    body = [np.concatenate([fit(images[i]) for images in columns.values()], axis=1) for i in range(rows)]
    return np.concatenate([header, *body], axis=0)


_PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
            (227, 119, 194), (127, 127, 127)]


def plot_metric(report: dict, metric: str, size: tuple[int, int] = (640, 420)) -> np.ndarray:
    """A line plot (uint8 RGB) of one metric's mean against T (log₂ axis) per method, with interval bars."""
    info = metric_info(metric)
    width, height = size
    left, right, top, bottom = 70, 150, 36, 48
    canvas = np.full((height, width, 3), 255, np.uint8)
    series: dict[str, list[tuple[int, dict]]] = {}
    for row in report["rows"]:
        value = row["metrics"].get(metric)
        if value and value.get("mean") is not None and math.isfinite(value["mean"]):
            series.setdefault(row["method"], []).append((row["shots"], value))
    better = (f"closer to {info.target:g}" if info.target is not None else
              "higher" if info.higher_is_better else "lower")
    title = f"{info.label} ({better} is better) vs T"
    cv2.putText(canvas, title, (left, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    if not series:
        cv2.putText(canvas, "no values", (left, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        return canvas
    shots = sorted({t for points in series.values() for t, _ in points})
    ys = [v for points in series.values() for _, value in points
          for v in (value["mean"], value.get("low"), value.get("high")) if v is not None]
    y_min, y_max = min(ys), max(ys)
    if y_max - y_min < 1e-12:
        y_min, y_max = y_min - 0.5, y_max + 0.5
    pad = 0.08 * (y_max - y_min)
    y_min, y_max = y_min - pad, y_max + pad
    x_lo, x_hi = math.log2(shots[0]), math.log2(shots[-1])
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(t: float) -> int:
        return left + (int(plot_w / 2) if x_hi == x_lo else int((math.log2(t) - x_lo) / (x_hi - x_lo) * plot_w))

    def py(v: float) -> int:
        return top + int((y_max - v) / (y_max - y_min) * plot_h)

    cv2.rectangle(canvas, (left, top), (left + plot_w, top + plot_h), (0, 0, 0), 1)
    for t in shots:
        cv2.line(canvas, (px(t), top + plot_h), (px(t), top + plot_h + 5), (0, 0, 0), 1)
        cv2.putText(canvas, str(t), (px(t) - 5, top + plot_h + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
    cv2.putText(canvas, "T (shots)", (left + plot_w // 2 - 30, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (0, 0, 0), 1, cv2.LINE_AA)
    for k in range(5):
        v = y_min + (y_max - y_min) * k / 4
        cv2.line(canvas, (left - 5, py(v)), (left, py(v)), (0, 0, 0), 1)
        cv2.putText(canvas, f"{v:.{info.digits}f}", (4, py(v) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                    cv2.LINE_AA)
    for index, (method, points) in enumerate(sorted(series.items())):
        colour = _PALETTE[index % len(_PALETTE)]
        points.sort(key=lambda item: item[0])
        xy = [(px(t), py(value["mean"])) for t, value in points]
        for (_, value), (x, y) in zip(points, xy, strict=True):
            if value.get("low") is not None and math.isfinite(value["low"]):
                cv2.line(canvas, (x, py(value["low"])), (x, py(value["high"])), colour, 1)
            cv2.circle(canvas, (x, y), 4, colour, -1, cv2.LINE_AA)
        if len(xy) > 1:
            cv2.polylines(canvas, [np.array(xy, np.int32)], False, colour, 2, cv2.LINE_AA)
        legend_y = top + 14 + 20 * index
        cv2.line(canvas, (width - right + 10, legend_y - 4), (width - right + 30, legend_y - 4), colour, 2)
        cv2.putText(canvas, method[:16], (width - right + 36, legend_y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0),
                    1, cv2.LINE_AA)
    return canvas


def write_report(report: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.json``, ``table.md`` and ``plots/<metric>.png`` into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    paths = {"json": write_json(report, out_dir / "report.json")}
    table = out_dir / "table.md"
    table.write_text(markdown_table(report), encoding="utf-8")
    paths["table"] = table
    for metric in report["metrics"]:
        paths[f"plot_{metric}"] = save_png(out_dir / "plots" / f"{metric}.png", plot_metric(report, metric))
    return paths


class VideoResults:
    """Per-video results on disk (``<out_dir>/videos/<video>.json``), so an evaluation resumes where it stopped.

    Each file holds that video's records (see ``build_report``); it is written atomically when the video is done.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.folder = Path(out_dir) / "videos"
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, video: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(video))
        return self.folder / f"{safe}.json"

    def done(self, video: str) -> bool:
        return self._path(video).is_file()

    def save(self, video: str, records: Sequence[dict]) -> Path:
        path = self._path(video)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(_json_safe(list(records)), allow_nan=False))
        temporary.replace(path)
        return path

    def records(self) -> list[dict]:
        """All saved records, in file-name order; the strings "inf"/"nan" are read back as floats."""
        result = []
        for path in sorted(self.folder.glob("*.json")):
            for record in json.loads(path.read_text()):
                record["metrics"] = {k: float(v) if isinstance(v, str) else v for k, v in record["metrics"].items()}
                result.append(record)
        return result
