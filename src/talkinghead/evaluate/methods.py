"""Running every method on one test video: the baselines and each model's avatars, personalized from T frames,
render the target frames (self-reenactment) and, with a driver, another person's motion (cross-identity);
each output is scored and the per-video records returned (`metrics.report.build_report` takes them)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.evaluate.frames import is_synthetic, load_frames, synthetic_cross_ground_truth
from talkinghead.evaluate.models import COPY_SOURCE, FIXED_BLEND, MESH_WARP, MESH_WARP_BLUR, EvaluatedModel
from talkinghead.evaluate.protocol import LARGE_YAW_DEGREES, VideoSplit
from talkinghead.evaluate.saved_frames import save_study_frames
from talkinghead.evaluate.scoring import FrameScorer, mean_metrics, paired_metrics, safe_name
from talkinghead.metrics.mouth import mouth_crop

RETARGET_MODES = ("relative", "absolute")
SHEET_ROWS = 8


@dataclass
class VideoRun:
    """What running the methods on one test video needs, and the time spent so far (over all videos)."""

    models: list[EvaluatedModel]
    index: Any
    """`data.index.DatasetIndex` of the test dataset."""
    out: Path
    shots: tuple[int, ...]
    size: int
    """The models' image size (frames are resized to it)."""
    scorer: FrameScorer
    seed: int
    fid_network: Any
    modes: tuple[str, ...] = RETARGET_MODES
    timing: dict[str, float] = field(default_factory=lambda: {"personalization_s": 0.0, "generation_s": 0.0,
                                                               "baselines_s": 0.0, "frames_generated": 0})
    fd_network: Any = None
    """FD-MobileNetV2 features (`metrics.realism.MobileNetV2Embedding`), None when unavailable."""
    study_frames: int = 0
    """Target frames per video and T saved as PNG for the user study (`saved_frames`; 0: none)."""
    temporal_landmarks: str = "smoothed"
    """The temporal window's driving landmarks: One-Euro smoothed as `animate` smooths a driver, or raw
    (`EvaluationSettings.temporal_landmarks`)."""


def source_objects(images: np.ndarray, landmarks: np.ndarray, key: str, frames: Sequence[int]) -> list:
    """Dataset frames as `inference.Source`s (already cropped, with their stored landmarks)."""
    from talkinghead.inference import Source

    size = images.shape[1]
    return [Source(f"{key} frame {f}", image, image, points, (0.0, 0.0, float(size)))
            for image, points, f in zip(images, landmarks, frames, strict=True)]


def _avatars(ctx: VideoRun, sources: list) -> dict[str, Any]:
    started = time.perf_counter()
    avatars = {}
    for model in ctx.models:
        avatars.update(model.avatars(sources, ctx.seed))
    ctx.timing["personalization_s"] += time.perf_counter() - started
    return avatars


def _generate(ctx: VideoRun, avatars: dict, source_images: np.ndarray, source_landmarks: np.ndarray,
              target_landmarks: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Every method's output for each target landmark set: baselines, then the avatars' renders."""
    from talkinghead.metrics.baselines import copy_source, fixed_blend, mesh_warp, mesh_warp_blur

    started = time.perf_counter()
    outputs: dict[str, list[np.ndarray]] = {
        COPY_SOURCE: [copy_source(source_images, source_landmarks, t) for t in target_landmarks],
        MESH_WARP: [mesh_warp(source_images, source_landmarks, t) for t in target_landmarks],
        MESH_WARP_BLUR: [mesh_warp_blur(source_images, source_landmarks, t) for t in target_landmarks],
        FIXED_BLEND: [fixed_blend(source_images, source_landmarks, t) for t in target_landmarks],
    }
    ctx.timing["baselines_s"] += time.perf_counter() - started
    started = time.perf_counter()
    for method, avatar in avatars.items():
        outputs[method] = render_batch(avatar, target_landmarks)
        ctx.timing["frames_generated"] += len(target_landmarks)
    ctx.timing["generation_s"] += time.perf_counter() - started
    return outputs


def render_batch(avatar, landmarks: np.ndarray, batch_size: int = 16) -> list[np.ndarray]:
    """What ``avatar.render`` gives for each of landmarks [n, 68, 2], run ``batch_size`` frames per generator call
    (`Avatar.render_batch`; G is per-sample: instance norm and AdaIN with the same ψ for every frame; the warp
    family takes, per frame, the ``model.inference_sources`` sources nearest to it)."""
    images: list[np.ndarray] = []
    for start in range(0, len(landmarks), batch_size):
        chunk = landmarks[start:start + batch_size]
        images.extend(avatar.render_batch(chunk))
    return images


def _fid_features(ctx: VideoRun, key: str, real: np.ndarray, outputs_by_shots: dict[int, dict],
                  network: Any, metric: str, region: Any = None) -> None:
    """Cache a set metric's features of one video (``fid``, ``fd_mobilenet``, ``fd_mouth``) under
    ``cache/<metric>``; ``region(image, i)`` cuts what is measured out of target frame i (default: the whole)."""
    if network is None:
        return

    def cut(images) -> list[np.ndarray]:
        return list(images) if region is None else [region(image, i) for i, image in enumerate(images)]

    arrays = {"real": network.features(cut(real))}
    for shots, outputs in outputs_by_shots.items():
        for method, images in outputs.items():
            arrays[f"{method}|{shots}"] = network.features(cut(images))
    path = ctx.out / "cache" / metric / f"{safe_name(key)}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{name.replace("|", "__T"): value for name, value in arrays.items()})


def evaluate_video(ctx: VideoRun, split: VideoSplit, driver: VideoSplit | None, yaw: np.ndarray | None) -> list:
    """The records of one test video: per T, every method's mean metrics over the target frames ("self"), over
    the large-yaw target frames ("large_yaw", when ``yaw`` is known) and, with a ``driver``, cross-identity
    ("cross_relative", "cross_absolute"); also writes its contact sheets and FID features."""
    from talkinghead.metrics.report import contact_sheet, save_png

    key, index = split.key, ctx.index
    needed = sorted(set(split.target_frames) | set(split.source_frames[max(ctx.shots)]) | set(split.window_frames))
    images, landmarks = load_frames(index, split.video_index, needed, ctx.size)
    position = {f: i for i, f in enumerate(needed)}
    targets = [position[f] for f in split.target_frames]
    gt_images, gt_landmarks = images[targets], landmarks[targets]
    gt_keys = [f"{key}/frame{f:06d}" for f in split.target_frames]
    cross = _cross_inputs(ctx, split, driver) if driver is not None else None
    records, outputs_by_shots = [], {}
    for shots in ctx.shots:
        chosen = [position[f] for f in split.source_frames[shots]]
        source_images, source_landmarks = images[chosen], landmarks[chosen]
        avatars = _avatars(ctx, source_objects(source_images, source_landmarks, key, split.source_frames[shots]))
        outputs = _generate(ctx, avatars, source_images, source_landmarks, gt_landmarks)
        outputs_by_shots[shots] = outputs
        large_yaw = None
        if yaw is not None:
            source_yaw = yaw[list(split.source_frames[shots])]
            large_yaw = [bool(np.all(np.abs(yaw[f] - source_yaw) > LARGE_YAW_DEGREES)) for f in split.target_frames]
        scored = {method: [ctx.scorer.score(o, g, k, mouth_landmarks=m)
                           for o, g, k, m in zip(frames, gt_images, gt_keys, gt_landmarks, strict=True)]
                  for method, frames in outputs.items()}
        self_records = _records(scored, {"video": key, "shots": shots, "protocol": "self"})
        if split.window_frames:
            window = [position[f] for f in split.window_frames]
            temporal = _temporal(ctx, avatars, source_images, source_landmarks, images[window], landmarks[window])
            for record in self_records:
                record["metrics"].update(temporal[record["method"]])
        records += self_records
        if large_yaw is not None:
            subsets = {method: [v for v, keep in zip(values, large_yaw, strict=True) if keep]
                       for method, values in scored.items()}
            records += _records(subsets, {"video": key, "shots": shots, "protocol": "large_yaw"},
                                names=sorted(next(iter(scored.values()))[0]))
        rows = list(range(min(SHEET_ROWS, len(gt_images))))
        best = [source_images[_most_similar(source_landmarks, gt_landmarks[r])] for r in rows]
        save_png(ctx.out / "sheets" / f"{safe_name(key)}_T{shots}.png",
                 contact_sheet(best, [gt_images[r] for r in rows], {m: [o[r] for r in rows]
                                                                    for m, o in outputs.items()}))
        save_study_frames(ctx.out, key, shots, split.target_frames, gt_images, outputs, ctx.study_frames)
        if cross is not None:
            records.extend(_cross_records(ctx, split, driver, cross, shots, avatars, source_images,
                                          source_landmarks, split.source_frames[shots]))
    _fid_features(ctx, key, gt_images, outputs_by_shots, ctx.fid_network, "fid")
    _fid_features(ctx, key, gt_images, outputs_by_shots, ctx.fd_network, "fd_mobilenet")
    _fid_features(ctx, key, gt_images, outputs_by_shots, ctx.fd_network, "fd_mouth",
                  region=lambda image, i: mouth_crop(image, gt_landmarks[i]))
    return records


TEMPORAL_METRICS = ("pop_rate", "excess_change", "change_ratio")


def _temporal(ctx: VideoRun, avatars: dict, source_images: np.ndarray, source_landmarks: np.ndarray,
              window_images: np.ndarray, window_landmarks: np.ndarray) -> dict[str, dict[str, float | None]]:
    """{method: pop rate, excess change, change ratio} over the window's consecutive frames, each method driven
    by the window's landmarks one frame after another, as `animate` renders (`metrics.temporal`): smoothed by
    the One-Euro filter `animate` applies to a driver, unless ``ctx.temporal_landmarks`` is "raw"."""
    from talkinghead.evaluate.settings import TEMPORAL_FPS
    from talkinghead.landmarks.smoothing import LandmarkSmoother
    from talkinghead.metrics.temporal import temporal_stability

    if ctx.temporal_landmarks == "smoothed":
        smoother = LandmarkSmoother(TEMPORAL_FPS)
        window_landmarks = np.stack([smoother(points) for points in window_landmarks])
    outputs = _generate(ctx, avatars, source_images, source_landmarks, window_landmarks)
    truth = list(window_images)
    return {method: {name: temporal_stability(frames, truth)[name] for name in TEMPORAL_METRICS}
            for method, frames in outputs.items()}


def _most_similar(source_landmarks: np.ndarray, target: np.ndarray) -> int:
    from talkinghead.metrics.baselines import most_similar_source

    return most_similar_source(source_landmarks, target)


def _cross_inputs(ctx: VideoRun, split: VideoSplit, driver: VideoSplit) -> dict:
    """B's driving landmarks (its target frames) and, on synthetic data, the true "A with B's motion" frames."""
    index = ctx.index
    driver_landmarks = index.landmarks(driver.video_index)[list(driver.target_frames)].astype(np.float32)
    driver_landmarks = driver_landmarks * (ctx.size / index.image_size)
    truth = None
    if is_synthetic(index, split.video_index) and is_synthetic(index, driver.video_index):
        truth, _ = synthetic_cross_ground_truth(index, split.video_index, driver.video_index, driver.target_frames,
                                                ctx.size)
    return {"landmarks": driver_landmarks, "truth": truth}


def _cross_records(ctx: VideoRun, split: VideoSplit, driver: VideoSplit, cross: dict, shots: int, avatars: dict,
                   source_images: np.ndarray, source_landmarks: np.ndarray, source_frames: Sequence[int]) -> list:
    from talkinghead.landmarks.retarget import Retargeter, find_best_frame

    driver_landmarks = cross["landmarks"]
    reference = driver_landmarks[find_best_frame(driver_landmarks, source_landmarks[0])]
    identity_references = [(image, f"{split.key}/frame{f:06d}") for image, f in zip(source_images, source_frames,
                                                                                     strict=True)]
    records = []
    for mode in ctx.modes:
        retargeted = Retargeter(source_landmarks[0], reference, mode)(driver_landmarks)
        outputs = _generate(ctx, avatars, source_images, source_landmarks, retargeted)
        scored = {}
        for method, frames in outputs.items():
            per_frame = []
            for i, output in enumerate(frames):
                values = ctx.scorer.score(output, target_landmarks=retargeted[i],
                                          identity_references=identity_references)
                if cross["truth"] is not None:
                    full = ctx.scorer.score(output, cross["truth"][i])
                    values.update(ssim=full["ssim"], psnr=full["psnr"], l1=full["l1"])
                per_frame.append(values)
            scored[method] = per_frame
        records += _records(scored, {"video": split.key, "shots": shots, "protocol": f"cross_{mode}",
                                     "driver": driver.key})
    return records


def _records(scored: dict[str, list[dict]], fields: dict, names: Sequence[str] | None = None) -> list[dict]:
    """One record per method of one (video, T, protocol): the per-frame metrics' means over the method's own frames,
    and AKD and CSIM over the frames every method has (`scoring.paired_metrics`)."""
    paired = paired_metrics(scored)
    return [{**fields, "method": method, "frames": len(per_frame),
             "metrics": {**mean_metrics(per_frame, names=names), **paired[method]}}
            for method, per_frame in scored.items()]
