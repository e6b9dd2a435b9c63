"""The top-level run: load the models, plan the test videos, run them (resuming finished ones), write the reports."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from talkinghead.evaluate.frames import video_yaw
from talkinghead.evaluate.methods import LARGE_YAW_DEGREES, RETARGET_MODES, VideoRun, evaluate_video
from talkinghead.evaluate.models import (
    COPY_SOURCE,
    FIXED_BLEND,
    MESH_WARP,
    MESH_WARP_BLUR,
    METHOD_NOTES,
    EvaluatedModel,
    load_models,
)
from talkinghead.evaluate.protocol import (
    VideoSplit,
    assign_drivers,
    check_identity_overlap,
    eyes_closed_split_frames,
    large_yaw_split_frames,
    mouth_open_split_frames,
    pick_test_videos,
    split_frames,
    temporal_window,
)
from talkinghead.evaluate.scoring import FrameScorer, default_detector, fid_set_metrics
from talkinghead.evaluate.settings import Backends, EvaluationSettings
from talkinghead.metrics.eyes import EYE_MARGIN, EYES_CLOSED, EYES_OPEN, relative_eye_openness
from talkinghead.metrics.mouth import MOUTH_CLOSED, MOUTH_MARGIN, MOUTH_OPEN, mouth_openness

log = logging.getLogger(__name__)


def evaluate(checkpoints: str | Path | Sequence[str | Path], data: str | Path, out: str | Path,
             settings: EvaluationSettings | None = None, backends: Backends | None = None) -> dict:
    """Run the paper's self-reenactment protocol (and optionally cross-identity) and write the reports to ``out``.

    checkpoints: one inference export (or run directory), or one FF and one FT checkpoint to evaluate side by
    side in one table; data: a dataset folder of unseen people. Returns ``{"self_reenactment": report,
    "large_yaw": report | None, "cross_identity": {mode: report} | None, "identity_check": ..., "timing": ...,
    "files": ..., "out": ...}`` (reports as `metrics.report.build_report`).
    """
    import torch

    from talkinghead.data.index import load_index
    from talkinghead.metrics.report import VideoResults

    settings, backends, out = settings or EvaluationSettings(), backends or Backends(), Path(out)
    device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    models = load_models(checkpoints, settings, device, backends.content_loss)
    index = load_index(data)
    splits, identity_check = plan(index, models, settings)
    identity = _identity_backend(backends.identity, settings.arcface_onnx)
    record = _settings_record(models, index, settings, identity.name, list(splits))
    _check_resume(out, record)
    (out / "splits.json").write_text(json.dumps([s.to_json() for s in splits.values()], indent=1) + "\n")
    cache = out / "cache" / f"identity-{identity.name}.npz"
    cache.parent.mkdir(parents=True, exist_ok=True)
    if cache.is_file():
        identity.load(cache)
    fid_network, fid_reason = _fid_network(backends.fid_network, settings.fid_weights, device)
    fd_network, fd_reason = _fd_network(backends.fd_network, device)
    independent = _independent_detector(backends.independent_detector)
    run = VideoRun(models, index, out, settings.shots, models[0].head.config.model.image_size,
                   FrameScorer(identity, backends.detector or default_detector(), independent), settings.seed,
                   fid_network,
                   fd_network=fd_network, study_frames=settings.study_frames,
                   temporal_landmarks=settings.temporal_landmarks)
    results = VideoResults(out)
    started = time.perf_counter()
    resumed = _run_videos(run, splits, results, identity, cache, settings.progress)
    timing = _timing(run, time.perf_counter() - started, len(splits) - resumed, resumed)
    common = _report_metadata(models, index, settings, identity.name, identity_check, len(splits))
    common["akd_detectors"] = AKD_NOTE + (f" AKD independent: measured by {independent[0]} on the frames where it "
                                          "finds the face in both truth and output." if independent else
                                          " No independent detector is installed (the mediapipe or face-alignment "
                                          "extra), so AKD is dlib's only.")
    common["notes"] = [*common["notes"], common["akd_detectors"]]
    records = [r for r in results.records() if r["video"] in splits]
    reports, files = write_reports(out, records, list(splits), common, fid_network, fid_reason,
                                   settings.cross_identity, fd_network, fd_reason)
    summary = {**reports, "identity_check": identity_check, "timing": timing, "files": files, "out": str(out)}
    (out / "evaluation.json").write_text(json.dumps(
        {"identity_check": identity_check, "timing": timing, "files": files, "settings": record}, indent=2) + "\n")
    log.info("evaluation of %d videos written to %s (%.1f s)", len(splits), out, timing["total_s"])
    return summary


def plan(index, models: Sequence[EvaluatedModel], settings: EvaluationSettings) -> tuple[dict[str, VideoSplit], dict]:
    """The test videos and their frame splits ({key: split}, in key order), after checking that no model was
    meta-learned on their people (what was checked is returned for the report, with ``skipped``: the videos a split
    could not use, and why). With the large-yaw split only videos whose head turns enough are eligible; with the
    mouth-open split only videos with an open mouth and enough closed-mouth frames for the sources; with the
    eyes-closed split only videos with a blink and enough open-eyed frames for the sources."""
    chosen_frames: dict[str, tuple] = {}
    skipped: dict[str, str] = {}

    def usable(video) -> bool:
        if settings.split == "large-yaw":
            found = large_yaw_split_frames(video.key, video_yaw(index, video.video_index), settings.shots,
                                           settings.targets, settings.seed)
            reason = f"the head does not turn {LARGE_YAW_DEGREES:g} degrees" if found is None else None
        else:  # a state the landmarks tell, in the targets and not in the sources
            split_frames_of, openness = ((eyes_closed_split_frames, relative_eye_openness)
                                         if settings.split == "eyes-closed" else
                                         (mouth_open_split_frames, mouth_openness))
            found = split_frames_of(video.key, openness(index.landmarks(video.video_index)), settings.shots,
                                    settings.targets, settings.seed)
            reason = found if isinstance(found, str) else None
        if reason is not None:
            skipped[video.key] = reason
            log.info("%s: not in the %s split: %s", video.key, settings.split, reason)
            return False
        chosen_frames[video.key] = found
        return True

    keep = None if settings.split == "random" else usable
    chosen = pick_test_videos(index, settings.videos, settings.shots[-1] + settings.targets, settings.seed,
                              per_identity=settings.per_identity, keep=keep)
    checks = [check_identity_overlap(index, chosen, m.metadata, settings.allow_overlap) for m in models]
    identity_check = checks[0] if len(checks) == 1 else {
        "method": "; ".join(f"{m.variant}: {c['method']}" for m, c in zip(models, checks, strict=True)),
        "overlap": sorted({name for c in checks for name in c["overlap"]}),
        "allowed": any(c["allowed"] for c in checks)}
    identity_check = {**identity_check, "skipped": skipped}
    drivers = assign_drivers(chosen) if settings.cross_identity else {}
    splits = {}
    for video in chosen:
        window: tuple[int, ...] = ()
        if settings.split == "random":
            window = temporal_window(video.key, video.num_frames, settings.shots[-1] + settings.targets,
                                     settings.temporal_window, settings.seed) if settings.temporal_window else ()
            targets, sources = split_frames(video.key, video.num_frames, settings.shots, settings.targets,
                                            settings.seed, exclude=window)
        else:
            targets, sources = chosen_frames[video.key]
        splits[video.key] = VideoSplit(video.key, video.video_index, video.identity, targets, sources,
                                       drivers.get(video.key), window)
    return splits, identity_check


def _run_videos(run: VideoRun, splits: dict[str, VideoSplit], results, identity, cache: Path,
                progress: bool) -> int:
    """Evaluate every video not finished before, saving its records and the identity cache after each; returns
    how many were finished before (resumed)."""
    from tqdm import tqdm

    resumed = 0
    bar = tqdm(list(splits.values()), unit="video", desc="evaluate", disable=not progress, dynamic_ncols=True)
    for split in bar:
        if results.done(split.key):
            resumed += 1
            continue
        bar.set_postfix_str(split.key[-24:])
        driver = splits[split.driver] if split.driver else None
        results.save(split.key, evaluate_video(run, split, driver, video_yaw(run.index, split.video_index)))
        temporary = cache.with_name(f"{cache.stem}.tmp.npz")
        identity.save(temporary)
        temporary.replace(cache)
    bar.close()
    return resumed


AKD_NOTE = ("AKD is measured by dlib, whose landmarks also drive the warp and the baselines, so it is circular: it "
            "favours outputs that keep dlib's points where dlib put them.")


def _independent_detector(chosen):
    """`Backends.independent_detector` resolved: None -> the first installed optional backend (or None); False ->
    None."""
    if chosen is None:
        from talkinghead.landmarks.optional_backends import independent_detector

        return independent_detector()
    return chosen or None


def _identity_backend(identity, arcface_onnx: str | None):
    from talkinghead.metrics.identity import ArcFaceIdentity, CachedIdentity, DlibIdentity

    if identity is None:
        identity = ArcFaceIdentity(arcface_onnx) if arcface_onnx else DlibIdentity()
    return identity if isinstance(identity, CachedIdentity) else CachedIdentity(identity)


def _fid_network(network, weights: str | None, device: str) -> tuple[Any, str]:
    """(the FID network, "") or (None, why it is unavailable)."""
    if network is not None:
        return network, ""
    from talkinghead.metrics.fid import FidInception, FidUnavailable

    try:
        return FidInception(weights, device=device), ""
    except FidUnavailable as error:
        log.warning("FID unavailable: %s", error)
        return None, str(error)


def _fd_network(network, device: str) -> tuple[Any, str]:
    """(the FD-MobileNetV2 feature network, "") or (None, why it is unavailable)."""
    if network is not None:
        return network, ""
    from talkinghead.metrics.realism import MobileNetV2Embedding
    from talkinghead.perceptual_weights import FeatureWeightsError

    try:
        return MobileNetV2Embedding(device=device), ""
    except FeatureWeightsError as error:
        log.warning("FD-MobileNetV2 unavailable: %s", error)
        return None, str(error)


def _settings_record(models: Sequence[EvaluatedModel], index, settings: EvaluationSettings, identity_name: str,
                     keys: Sequence[str]) -> dict:
    """``settings.json``: what was evaluated; a resumed evaluation must match it."""
    return {"checkpoints": [{"path": str(m.path), "bytes": m.path.stat().st_size, "variant": m.variant,
                             "finetune": dataclasses.asdict(m.head.config.finetune)} for m in models],
            "dataset": str(index.root), "dataset_hash": index.content_hash, **settings.record(),
            "identity_backend": identity_name, "videos": list(keys)}


def _check_resume(out: Path, settings: dict) -> None:
    path = out / "settings.json"
    if path.is_file():
        previous = json.loads(path.read_text())
        changed = [k for k in settings if previous.get(k) != settings[k]]
        if changed:
            raise ValueError(f"{out} holds an evaluation with other settings ({', '.join(changed)} differ); "
                             "use another --out folder, or delete it to start again")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")


def _timing(run: VideoRun, elapsed: float, evaluated: int, resumed: int) -> dict:
    timing = dict(run.timing, metrics_s=run.scorer.seconds, total_s=elapsed, videos_evaluated=evaluated,
                  videos_resumed=resumed)
    timing["generation_frames_per_s"] = (timing["frames_generated"] / timing["generation_s"]
                                         if timing["generation_s"] else None)
    return timing


SPLIT_NOTES = {
    "random": "random: target frames a random sample of each video, sources random among the others",
    "large-yaw": (f"large-yaw: target frames the ones turned furthest to one side, sources random among the frames "
                  f"more than {LARGE_YAW_DEGREES:g} degrees of yaw short of every target; only videos whose head "
                  "turns that much"),
    "mouth-open": (f"mouth-open: target frames a random sample of those whose mouth is open (inner-lip gap > "
                   f"{MOUTH_OPEN:g} inter-ocular distances), sources random among the frames whose mouth is closed "
                   f"(gap < {MOUTH_CLOSED:g}), so every source shows the mouth closed; only videos that have both"),
    "eyes-closed": (f"eyes-closed: target frames a random sample of those in a blink (eye aspect ratio < "
                    f"{EYES_CLOSED:g} of the video's median), sources random among the frames whose eyes are open "
                    f"(> {EYES_OPEN:g} of it), so every source shows the eyes open; only videos that have both"),
}
MOUTH_NOTE = (f"Mouth columns: L1, SSIM and Sharpness on the target's mouth region (its outer-lip box enlarged by "
              f"{MOUTH_MARGIN:g} of its size on every side), and FD-MobileNetV2 of those regions resized to 64 px.")
EYE_NOTE = (f"Eye columns: L1, SSIM and Sharpness on the target's eye region (its brows-and-eyes box enlarged by "
            f"{EYE_MARGIN:g} of its size on every side; `metrics.eyes`).")
TEMPORAL_NOTE = ("Pop rate, excess change and change ratio: on a window of consecutive frames per video (disjoint from "
                 "targets and sources), driven frame by frame as animate does (its landmarks One-Euro smoothed as "
                 "animate smooths a driver, unless --temporal-landmarks raw); a pair pops when the output changes "
                 "more than 2x the real video's change + 2 grey levels; excess change = mean of max(0, output's "
                 "change - real change) in grey levels (`metrics.temporal`).")


def holdout_note(models: Sequence[EvaluatedModel], shots: Sequence[int]) -> str | None:
    """The report's sentence on early stopping: per T, how many frames fine-tuning trains on and holds out."""
    for model in models:
        split = model.holdout(shots)
        if split:
            counts = "; ".join(f"T = {t}: {s['train']} trained on, {s['held_out']} held out" for t, s in split.items())
            return (f"Fine-tuning ({', '.join(l for l in model.labels if l != model.feed_forward_label)}) holds "
                    f"frames out of training for early stopping when T >= "
                    f"{model.head.config.finetune.holdout_min_shots}: {counts}.")
    return None


def _report_metadata(models: Sequence[EvaluatedModel], index, settings: EvaluationSettings, identity_name: str,
                     identity_check: dict, videos: int) -> dict:
    """What every report of this evaluation states: the checkpoints, the settings, the row labels, early stopping."""
    labels = [label for m in models for label in m.labels]
    holdout = next((m.holdout(settings.shots) for m in models if m.fine_tunes), {})
    baselines = [COPY_SOURCE, MESH_WARP, MESH_WARP_BLUR, FIXED_BLEND]
    notes = [f"{label}: {METHOD_NOTES[label]}" for label in baselines + labels]
    notes += [MOUTH_NOTE, EYE_NOTE]
    notes += [TEMPORAL_NOTE] if settings.split == "random" and settings.temporal_window else []
    skipped = identity_check.get("skipped", {})
    if skipped:
        notes.append(f"{len(skipped)} video(s) left out of the {settings.split} split: "
                     + "; ".join(f"{key}: {why}" for key, why in sorted(skipped.items())))
    if (note := holdout_note(models, settings.shots)) is not None:
        notes.append(note)
    return {"checkpoints": {m.variant: str(m.path) for m in models}, "dataset": str(index.root),
            "shots": list(settings.shots), "targets": settings.targets, "videos": videos,
            "finetune": {m.variant: {"steps": m.finetune_steps, "epochs": m.finetune_epochs} for m in models
                         if m.fine_tunes},
            "finetune_holdout": {str(t): v for t, v in holdout.items()},
            "methods": {k: METHOD_NOTES[k] for k in baselines + labels},
            "notes": notes, "identity_backend": identity_name, "identity_check": identity_check,
            "seed": settings.seed, "split": SPLIT_NOTES[settings.split],
            "skipped_videos": identity_check.get("skipped", {})}


def write_reports(out: Path, records: list[dict], keys: Sequence[str], common: dict, fid_network, fid_reason: str,
                  cross_identity: bool, fd_network=None,
                  fd_reason: str = "FD-MobileNetV2 was not computed") -> tuple[dict, dict]:
    """Build and write the self-reenactment, large-yaw and cross-identity reports from the per-video records;
    returns ({"self_reenactment", "large_yaw", "cross_identity"}: reports, files written)."""
    from talkinghead.metrics.report import build_report, write_report

    files: dict[str, Any] = {}
    self_records = [r for r in records if r.get("protocol", "self") == "self"]
    methods_shots = {(r["method"], r["shots"]) for r in self_records}
    fid = fid_set_metrics(out, keys, methods_shots, fid_network, fid_reason)
    fd = fid_set_metrics(out, keys, methods_shots, fd_network, fd_reason, metric="fd_mobilenet")
    fd_mouth = fid_set_metrics(out, keys, methods_shots, fd_network, fd_reason, metric="fd_mouth")
    set_metrics = {k: {**fid.get(k, {}), **fd.get(k, {}), **fd_mouth.get(k, {})}
                   for k in fid.keys() | fd.keys() | fd_mouth.keys()}
    report = build_report(self_records, set_metrics=set_metrics, metadata={**common, "protocol": "self-reenactment"})
    files["self_reenactment"] = {k: str(v) for k, v in write_report(report, out).items()}
    large_yaw = None
    yaw_records = [r for r in records if r.get("protocol") == "large_yaw"]
    if yaw_records:
        frames = {f"{r['method']} ({r['shots']})": sum(x["frames"] for x in yaw_records if x["method"] == r["method"]
                                                       and x["shots"] == r["shots"]) for r in yaw_records}
        large_yaw = build_report(yaw_records, metadata={
            **common, "frames": frames, "protocol": f"self-reenactment, target frames whose yaw differs from every "
                                                    f"source frame's by more than {LARGE_YAW_DEGREES:g} degrees"})
        files["large_yaw"] = {k: str(v) for k, v in write_report(large_yaw, out / "large_yaw").items()}
    cross = None
    if cross_identity:
        cross = {}
        for mode in RETARGET_MODES:
            mine = [r for r in records if r.get("protocol") == f"cross_{mode}"]
            if not mine:
                continue
            synthetic = any("ssim" in r["metrics"] for r in mine)
            cross[mode] = build_report(mine, metadata={
                **common, "protocol": f"cross-identity reenactment, {mode} retargeting",
                "csim": "mean cosine to the identity's own source frames",
                "akd": "landmarks detected on the output vs the retargeted driver landmarks (motion following)",
                "full_reference": ("SSIM/PSNR/L1 against the renderer's true frame of A with B's motion"
                                   if synthetic else "not available (not a synthetic dataset)")})
            files[f"cross_{mode}"] = {k: str(v) for k, v in write_report(cross[mode], out / "cross_identity" /
                                                                         mode).items()}
    return {"self_reenactment": report, "large_yaw": large_yaw, "cross_identity": cross}, files


def format_summary(summary: dict) -> str:
    """A short text for the command line: the Table-1 markdown of each report and where the files are."""
    from talkinghead.metrics.report import markdown_table

    parts = ["Self-reenactment", markdown_table(summary["self_reenactment"])]
    if summary.get("large_yaw"):
        parts += [f"Large yaw (> {LARGE_YAW_DEGREES:g} degrees from every source frame)",
                  markdown_table(summary["large_yaw"])]
    for mode, report in (summary.get("cross_identity") or {}).items():
        parts += [f"Cross-identity ({mode})", markdown_table(report)]
    timing = summary["timing"]
    rate = timing.get("generation_frames_per_s")
    rate_text = f"{rate:.1f} frames/s" if rate else "n/a"
    parts.append(f"{timing['videos_evaluated']} videos evaluated, {timing['videos_resumed']} resumed; "
                 f"generation {rate_text}, metrics {timing['metrics_s']:.1f} s; "
                 f"reports in {summary['out']}")
    return "\n".join(parts)
