"""Which checkpoint to ship: candidates against the shipped model on the validation people only (issue 25, item 9).

A long run leaves many exports, and a recipe change (a loss weight, an inference setting) makes another candidate.
The choice between them is made on validation reports of ``talkinghead evaluate``, paired video by video against the
reference (usually the shipped model), with one rule written down before any report is read:

* **Only validation people.** Every report must come from ``--identity-split ... --part validation``
  (``settings.json``); a report of the test part, or one without an identity split, is refused: the test people
  are read once, after the choice.
* **Like with like.** A candidate's report of a split is compared with the reference's report of that split, and
  the two must have measured the same thing: the same dataset (hash), videos, split, shots, targets, seed, fine-tuning
  steps and temporal window. Anything else is refused with the field that differs.
* **The whole frame must not fall behind** (random split): on each T, the paired difference candidate − reference of
  every primary metric (`metrics.report.PRIMARY_METRICS`: SSIM, PSNR, L1) is *behind* when its 95 % Student-t
  interval over videos excludes 0 on the wrong side. A candidate behind on any of them is not eligible.
* **No target is given up** (`evaluate.targets`, issue 25's targets read from the same reports against their
  baseline rows): a candidate that misses a target the reference meets is not eligible.
* **Mouth FD may not grow** (mouth-open split): mouth-crop FD is a set metric with no per-video pairing, so it
  cannot enter the score; on each T the candidate's may be at most `MOUTH_FD_TOLERANCE` (5 %) above the
  reference's, or the candidate is not eligible. Written down in stop 32, before its candidates were read, after
  stop 31's run H scored +1 on whole-frame sharpness while its mouth FD went from −20 % / −28 % of the mesh warp's to
  −9 % / −20 %. Since stop 36 the table also gives the change's paired jackknife interval over videos, from the
  crops' features the folders cache (`metrics.fid.frechet_distance_change_interval`). Since stop 37 (decided before
  its candidates were read) that interval also counts in the score like a per-video metric: +1 when it lies wholly
  below 0 (a lower mouth FD), −1 wholly above; without cached features it is a tie. Mouth FD is the issue's own
  mouth target, and with the paired interval it can be told from noise like the others.
* **The score:** on each T, each of `WHOLE_FRAME_METRICS` (random split: the primary metrics, the pop rate and
  sharpness) and `MOUTH_METRICS` (mouth-open split: the mouth's L1, SSIM, sharpness and teeth) counts +1 when its
  paired interval excludes 0 on the better side and −1 on the worse side (metrics with a target, such as sharpness →
  1, compare the distance to it). The score is the sum: a sharper mouth that costs whole-frame sharpness, or a
  steadier picture that costs the mouth, weigh one against the other.
* **The eyes, when they are read** (eyes-closed split, optional; written in stop 34, before its lid-prior candidates
  were read): when the reference gives a report of the eyes-closed split, every candidate must give one too, and on
  each T `EYE_METRICS` (the eye region's L1, SSIM and sharpness on blink targets) count in the score like the mouth's.
  A blink is a few frames of a few pixels that the other splits cannot see. Stop 35 added the eye region's white
  flecks (``eye_flecks``: tooth-white pixels the truth does not have) to `EYE_METRICS`, before its candidates were
  read: stop 34's lid prior scored +3 on the other three while painting such flecks. A few flecks on a few people
  hardly move a paired interval, so they are also a guard: on each T the candidate's mean may be at most
  `FLECKS_TOLERANCE` (0.05 % of the eye region) above the reference's, or it is not eligible.
* **The choice:** the eligible candidate with the highest score above 0 (ties: the higher mean paired SSIM of the
  random split); when none has a positive score, the reference stays.

What the rule does not weigh is speed: an inference setting such as ``model.inference_sources`` is also timed
(`benchmarks/cases/realtime.py`). Stop 29's continued run is what this rule would have refused: step 5,000 was
ahead on teeth invented by a margin inside its spread, and behind on whole-frame SSIM (−0.0009 ± 0.0003, 10 of 11
videos).

    python -m talkinghead.evaluate.checkpoint_choice --reference shipped VAL_RANDOM VAL_MOUTH \\
        --candidate step-9000 VAL_RANDOM_9000 VAL_MOUTH_9000 [--candidate ...] [--method ours-FT-init] [--out F.json]

Each name is followed by that checkpoint's report folders (any number; each folder's split is read from its
``settings.json``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.evaluate.scoring import safe_name
from talkinghead.evaluate.targets import row_means, targets_met
from talkinghead.metrics.eyes import EYE_METRICS  # the eyes-closed split's metrics the score counts, when read
from talkinghead.metrics.fid import frechet_distance_change_interval
from talkinghead.metrics.report import BASELINES, PRIMARY_METRICS, metric_info, paired_difference

WHOLE_FRAME_METRICS = (*PRIMARY_METRICS, "pop_rate", "sharpness")
"""The random split's per-video metrics the score counts; a candidate behind on a `PRIMARY_METRICS` one is not
eligible."""
MOUTH_METRICS = ("mouth_l1", "mouth_ssim", "mouth_sharpness", "teeth_shown", "teeth_invented")
"""The mouth-open split's per-video metrics the score counts (`metrics.mouth`)."""
VERDICT_POINTS = {"ahead": 1, "behind": -1, "tie": 0}
"""What each verdict adds to the score."""
WHOLE_FRAME_SPLIT = "random"
MOUTH_SPLIT = "mouth-open"
EYES_SPLIT = "eyes-closed"
MATCHED_SETTINGS = ("dataset_hash", "videos", "split", "shots", "targets", "seed", "finetune_steps",
                    "finetune_epochs", "temporal_window", "cross_identity")
"""``settings.json`` fields a candidate's report must share with the reference's report of the same split."""
CONFIDENCE = 0.95
MOUTH_FD_TOLERANCE = 0.05
"""How much a candidate's mouth-crop FD may exceed the reference's, relative, on each T of the mouth-open split."""
FLECKS_TOLERANCE = 0.0005
"""How much a candidate's mean ``eye_flecks`` (a share of the eye region) may exceed the reference's, absolute, on
each T of the eyes-closed split: 0.05 % of the eye region, between the mesh warp's 0.006-0.013 % and stop 34's lid
prior's 0.22-0.27 % (`metrics.eyes`)."""


class ChoiceError(ValueError):
    """A report that cannot take part in the choice (names the folder and what to do)."""


@dataclass(frozen=True)
class Report:
    """One ``talkinghead evaluate`` output folder: its ``settings.json`` and its ``report.json``."""

    folder: Path
    settings: dict[str, Any]
    report: dict[str, Any]

    @property
    def split(self) -> str:
        return str(self.settings.get("split") or WHOLE_FRAME_SPLIT)

    @classmethod
    def load(cls, folder: str | Path) -> Report:
        folder = Path(folder)
        files = {}
        for name in ("settings.json", "report.json"):
            path = folder / name
            if not path.is_file():
                raise ChoiceError(f"{folder}: no {name}; pass the --out folder of a finished `talkinghead evaluate`")
            files[name] = json.loads(path.read_text())
        settings = files["settings.json"]
        identity_split = settings.get("identity_split")
        part = identity_split.get("part") if isinstance(identity_split, dict) else None
        if part != "validation":
            seen = "no identity split" if identity_split is None else f"part {part!r}"
            raise ChoiceError(f"{folder}: this report reads {seen}; a checkpoint is chosen on the validation people "
                              "only (evaluate with --identity-split SPLIT.json --part validation); the test people "
                              "are read once, after the choice")
        return cls(folder, settings, files["report.json"])

    def records(self, method: str, shots: int) -> list[dict]:
        """The per-video records of ``method`` at T = ``shots`` (self-reenactment)."""
        return [r for r in self.report["per_video"] if r["method"] == method and int(r["shots"]) == shots
                and r.get("protocol", "self") == "self"]

    def model_methods(self) -> list[str]:
        return sorted({r["method"] for r in self.report["per_video"] if r["method"] not in BASELINES})


def _check_matched(candidate: Report, reference: Report) -> None:
    for field in MATCHED_SETTINGS:
        mine, theirs = candidate.settings.get(field), reference.settings.get(field)
        if mine != theirs:
            raise ChoiceError(f"{candidate.folder}: settings.json field {field!r} is {mine!r} but the reference's "
                              f"{reference.folder} has {theirs!r}; evaluate both with the same data and options")


def _verdict(difference: dict, higher_is_better: bool) -> str:
    """``ahead`` / ``behind`` when the paired interval excludes 0, else ``tie`` (one video: no interval, ``tie``)."""
    low, high = difference["low"], difference["high"]
    if low is None or high is None:
        return "tie"
    if low > 0:
        return "ahead" if higher_is_better else "behind"
    if high < 0:
        return "behind" if higher_is_better else "ahead"
    return "tie"


def compare(candidate: Report, reference: Report, method: str, metrics: Sequence[str]) -> dict[str, dict]:
    """Per T and metric: the paired difference candidate − reference (`paired_difference`) and its verdict. Metrics
    with a target (sharpness → 1) are compared as the negative distance to it, so "ahead" is closer."""
    _check_matched(candidate, reference)
    result: dict[str, dict] = {}
    for shots in candidate.settings["shots"]:
        mine, theirs = candidate.records(method, shots), reference.records(method, shots)
        if not mine or not theirs:
            raise ChoiceError(f"{candidate.folder if not mine else reference.folder}: no {method!r} rows at "
                              f"T = {shots}; pass --method (the report has {candidate.model_methods()})")
        per_metric = {}
        for name in metrics:
            info = metric_info(name)
            if info.target is None:
                ours, base, higher_is_better = mine, theirs, info.higher_is_better
            else:  # the negative distance to the target: higher is closer
                ours = [_distance(r, name, info.target) for r in mine]
                base = [_distance(r, name, info.target) for r in theirs]
                higher_is_better = True
            difference = paired_difference(ours, base, name, higher_is_better, CONFIDENCE)
            if info.target is not None:
                difference["compared"] = f"-|{name} - {info.target:g}|"
            per_metric[name] = {**difference, "verdict": _verdict(difference, higher_is_better)}
        result[str(shots)] = per_metric
    return result


def _distance(record: dict, name: str, target: float) -> dict:
    value = record["metrics"].get(name)
    return {"video": record["video"], "metrics": {name: None if value is None else -abs(value - target)}}


def row_mean_change(candidate: Report, reference: Report, method: str, metric: str,
                    relative: bool = False) -> dict[str, dict]:
    """Per T of the candidate's report: the reference's and the candidate's mean ``metric`` over videos (the report's
    row) and the change, candidate − reference, or candidate / reference − 1 when ``relative``; None when either is
    missing (or, relative, the reference is not positive)."""
    result = {}
    for shots in candidate.settings["shots"]:
        mine = row_means(candidate.report, int(shots)).get(method, {}).get(metric)
        theirs = row_means(reference.report, int(shots)).get(method, {}).get(metric)
        if mine is None or theirs is None or (relative and theirs <= 0):
            change = None
        else:
            change = mine / theirs - 1.0 if relative else mine - theirs
        result[str(shots)] = {"reference": theirs, "candidate": mine, "change": change}
    return result


def mouth_fd_change(candidate: Report, reference: Report, method: str) -> dict[str, dict]:
    """Per T of the mouth-open split: the reference's and the candidate's mouth-crop FD and the relative change
    (candidate / reference − 1; None when either is missing), with ``low``/``high``: its paired jackknife interval
    over videos (`metrics.fid.frechet_distance_change_interval`) when both folders kept the crops' features for the
    same targets, else None; ``verdict``: ``ahead`` when the interval lies below 0, ``behind`` above, else ``tie``
    (scored since stop 37, see the module docstring)."""
    result = row_mean_change(candidate, reference, method, "fd_mouth", relative=True)
    for shots, entry in result.items():
        entry["low"] = entry["high"] = None
        entry["verdict"] = "tie"
        mine, theirs = (_mouth_features(r, method, shots) for r in (candidate, reference))
        same_targets = mine is not None and theirs is not None and np.array_equal(mine[2], theirs[2]) \
            and np.allclose(mine[0], theirs[0])
        if not same_targets:
            continue
        found = frechet_distance_change_interval(mine[0], mine[1], theirs[1], mine[2])
        entry["low"], entry["high"] = found["low"], found["high"]
        entry["verdict"] = _verdict(found, higher_is_better=False)
    return result


def _mouth_features(report: Report, method: str, shots: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The mouth crops' features the report's folder cached for its videos (``cache/fd_mouth/<video>.npz``, as
    `evaluate.scoring.fid_set_metrics` reads them): real rows, ``method``'s rows at T = ``shots`` and each row's
    video; None when any of them is missing."""
    real, fake, videos = [], [], []
    for key in report.settings.get("videos", []):
        path = report.folder / "cache" / "fd_mouth" / f"{safe_name(key)}.npz"
        if not path.is_file():
            return None
        with np.load(path) as arrays:
            if f"{method}__T{shots}" not in arrays.files:
                return None
            real.append(arrays["real"])
            fake.append(arrays[f"{method}__T{shots}"])
        videos += [key] * len(real[-1])
    if not videos:
        return None
    return np.concatenate(real), np.concatenate(fake), np.array(videos)


def eye_flecks_change(candidate: Report, reference: Report, method: str) -> dict[str, dict]:
    """Per T of the eyes-closed split: the reference's and the candidate's mean ``eye_flecks`` over videos and the
    change (candidate − reference; None when either is missing)."""
    return row_mean_change(candidate, reference, method, "eye_flecks")


def choose(reference: tuple[str, Sequence[Report]], candidates: Sequence[tuple[str, Sequence[Report]]],
           method: str) -> dict[str, Any]:
    """The rule of the module docstring. Returns ``{"choice": name, "candidates": {name: {"eligible", "score",
    "ssim", "whole_frame": {T: {metric: ...}}, "mouth": {T: {metric: ...}}, "eyes": {T: {metric: ...}}}}, "rule":
    ...}`` ("eyes" is empty when the reference has no eyes-closed report)."""
    reference_name, reference_reports = reference
    by_split = {}
    for report in reference_reports:
        if report.split in by_split:
            raise ChoiceError(f"{report.folder}: the reference has two reports of the {report.split!r} split")
        by_split[report.split] = report
    if WHOLE_FRAME_SPLIT not in by_split or MOUTH_SPLIT not in by_split:
        raise ChoiceError(f"the reference {reference_name!r} needs a report of the {WHOLE_FRAME_SPLIT!r} split and one "
                          f"of the {MOUTH_SPLIT!r} split (evaluate --split {MOUTH_SPLIT}); it has {sorted(by_split)}")
    reference_targets = targets_met({s: r.report for s, r in by_split.items()}, method)
    results: dict[str, dict] = {}
    for name, reports in candidates:
        if name == reference_name or name in results:
            raise ChoiceError(f"candidate name {name!r} is used twice (or is the reference's)")
        entry: dict[str, Any] = {"whole_frame": {}, "mouth": {}, "eyes": {}}
        splits = {report.split: report for report in reports}
        missing = {WHOLE_FRAME_SPLIT, MOUTH_SPLIT, *({EYES_SPLIT} & set(by_split))} - set(splits)
        if missing:
            raise ChoiceError(f"candidate {name!r} has no report of the {sorted(missing)} split(s)")
        entry["whole_frame"] = compare(splits[WHOLE_FRAME_SPLIT], by_split[WHOLE_FRAME_SPLIT], method,
                                       WHOLE_FRAME_METRICS)
        entry["mouth"] = compare(splits[MOUTH_SPLIT], by_split[MOUTH_SPLIT], method, MOUTH_METRICS)
        if EYES_SPLIT in by_split:
            entry["eyes"] = compare(splits[EYES_SPLIT], by_split[EYES_SPLIT], method, EYE_METRICS)
        refusals = [f"{name} behind at T = {shots}" for shots, per_t in entry["whole_frame"].items()
                    for name in PRIMARY_METRICS if per_t[name]["verdict"] == "behind"]
        entry["targets"] = targets_met({s: r.report for s, r in splits.items()}, method)
        entry["targets_lost"] = [key for key, met in reference_targets.items()
                                 if met is True and entry["targets"].get(key) is not True]
        refusals += [f"target lost: {key}" for key in entry["targets_lost"]]
        entry["mouth_fd"] = mouth_fd_change(splits[MOUTH_SPLIT], by_split[MOUTH_SPLIT], method)
        for shots, d in entry["mouth_fd"].items():
            if d["change"] is None:
                refusals.append(f"mouth FD not measured at T = {shots} (evaluate the mouth-open split with FD)")
            elif d["change"] > MOUTH_FD_TOLERANCE:
                refusals.append(f"mouth FD +{100 * d['change']:.1f} % at T = {shots}")
        entry["eye_flecks"] = eye_flecks_change(splits[EYES_SPLIT], by_split[EYES_SPLIT], method) if (
            EYES_SPLIT in by_split) else {}
        for shots, d in entry["eye_flecks"].items():
            if d["change"] is None:
                refusals.append(f"eye flecks not measured at T = {shots} (evaluate the eyes-closed split again)")
            elif d["change"] > FLECKS_TOLERANCE:
                refusals.append(f"eye white flecks +{100 * d['change']:.2f} % of the eye region at T = {shots}")
        entry["refusals"] = refusals
        entry["eligible"] = not refusals
        verdicts = [m["verdict"] for part in ("whole_frame", "mouth", "eyes") for per_t in entry[part].values()
                    for m in per_t.values()] + [d["verdict"] for d in entry["mouth_fd"].values()]
        entry["score"] = sum(VERDICT_POINTS[v] for v in verdicts)
        entry["ssim"] = sum(per_t["ssim"]["mean"] or 0.0 for per_t in entry["whole_frame"].values())
        results[name] = entry
    eligible = [(entry["score"], entry["ssim"], name) for name, entry in results.items()
                if entry["eligible"] and entry["score"] > 0]
    choice = max(eligible)[2] if eligible else reference_name
    return {"choice": choice, "reference": reference_name, "method": method, "candidates": results,
            "rule": "eligible: no primary whole-frame metric (random split) behind the reference's (95% paired "
                    "interval), no target the reference meets missed (evaluate.targets), mouth FD at most "
                    f"{100 * MOUTH_FD_TOLERANCE:g}% above the reference's on each T, eye white flecks at most "
                    f"{100 * FLECKS_TOLERANCE:g}% of the eye region above the reference's on each T; score: "
                    "whole-frame (random split), mouth (mouth-open split, with the mouth FD change's paired "
                    "interval) and, when the reference has it, eye "
                    "(eyes-closed split) metrics ahead minus behind; choice: the highest positive score, else the "
                    "reference"}


def table(result: dict) -> str:
    """Markdown: one row per candidate, T and metric (paired mean ± half-width, videos ahead/behind, verdict)."""
    lines = [f"Reference: {result['reference']} ({result['method']}). Choice: **{result['choice']}**.", "",
             "| candidate | split | T | metric | candidate − reference | ahead/behind | verdict |",
             "|---|---|---|---|---|---|---|"]
    for name, entry in result["candidates"].items():
        for part, split in (("whole_frame", WHOLE_FRAME_SPLIT), ("mouth", MOUTH_SPLIT), ("eyes", EYES_SPLIT)):
            for shots, per_metric in entry[part].items():
                for metric, d in per_metric.items():
                    half = "" if d["low"] is None else f" ± {(d['high'] - d['low']) / 2:.5f}"
                    mean = "n/a" if d["mean"] is None else f"{d['mean']:+.5f}{half}"
                    lines.append(f"| {name} | {split} | {shots} | {d.get('compared', metric)} | {mean} | "
                                 f"{d['ahead']}/{d['behind']} | {d['verdict']} |")
        for shots, d in entry["mouth_fd"].items():
            change = "n/a" if d["change"] is None else f"{100 * d['change']:+.1f} %"
            if d.get("low") is not None:
                change += f" [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"
            lines.append(f"| {name} | {MOUTH_SPLIT} | {shots} | mouth FD (set) | {change} | | "
                         f"{d['verdict']}: {d['candidate'] if d['candidate'] is None else round(d['candidate'], 1)} "
                         f"against {d['reference'] if d['reference'] is None else round(d['reference'], 1)} |")
        for shots, d in entry.get("eye_flecks", {}).items():
            change = "n/a" if d["change"] is None else f"{100 * d['change']:+.3f} %"
            mine, theirs = (("n/a" if v is None else f"{100 * v:.3f} %") for v in (d["candidate"], d["reference"]))
            lines.append(f"| {name} | {EYES_SPLIT} | {shots} | eye white flecks (mean) | {change} | | "
                         f"{mine} against {theirs} |")
        refused = "; ".join(entry["refusals"]) or "none"
        lines.append(f"| {name} | | | **eligible {entry['eligible']}, score {entry['score']:+d}** | | | "
                     f"refused for: {refused} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    from talkinghead.data.index import write_json_atomic

    parser = argparse.ArgumentParser(prog="python -m talkinghead.evaluate.checkpoint_choice",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", nargs="+", required=True, metavar="NAME_THEN_FOLDERS",
                        help="a name, then the reference's report folders (random and mouth-open splits; "
                             "eyes-closed too to score the eyes)")
    parser.add_argument("--candidate", nargs="+", action="append", required=True, metavar="NAME_THEN_FOLDERS",
                        help="a name, then that candidate's report folders; repeat for each candidate")
    parser.add_argument("--method", default=None,
                        help="the model row to compare (default: the reports' only non-baseline method)")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here (atomic)")
    args = parser.parse_args(argv)
    groups = [args.reference, *args.candidate]
    for group in groups:
        if len(group) < 2:
            parser.error(f"{group[0]!r}: give a name and then at least one report folder")
    try:
        loaded = [(group[0], [Report.load(folder) for folder in group[1:]]) for group in groups]
        method = args.method
        if method is None:
            methods = sorted({m for _, reports in loaded for report in reports for m in report.model_methods()})
            if len(methods) != 1:
                raise ChoiceError(f"the reports have the model rows {methods}; choose one with --method")
            method = methods[0]
        result = choose(loaded[0], loaded[1:], method)
    except ChoiceError as error:
        parser.exit(2, f"error: {error}\n")
    print(table(result))
    if args.out is not None:
        write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
