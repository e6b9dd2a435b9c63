"""Does FD-MobileNetV2 (not comparable with published FID) see blur? Issue 18 item 2, measured on real frames.

On the prepared test dataset (``/work/data/test128``, or ``TALKINGHEAD_REALISM_DATA``; read in place, never copied),
per video: 8 held-out target frames are the real reference set; 8 other frames of the same video are the sources.
Sets scored against the reference, FD-MobileNetV2 and mean relative sharpness (1.0 = as sharp as the truth):

- ``ground_truth``: the reference itself (FD 0 by construction, a check);
- ``other_real``: 8 other real frames per video (the sources): the FD of real against real, the noise floor;
- ``blur_sigma{1,2,3}``: the ground truth Gaussian-blurred;
- ``mesh_warp`` / ``copy_source``: the baselines (`metrics.baselines`) from the 8 sources to the targets' landmarks.

Also the wall time of the features per image, next to a 128 px OpenCV Gaussian blur (a fixed unit of CPU work).

Issue 24 item 5, in the same run: per set KID-MobileNetV2 and the delete-one-video jackknife 95% half-widths of FD
and KID (`metrics.fid.frechet_distance_interval`, `kernel_distance_interval`: what `evaluate` now reports), the wall
time of both intervals per set next to the features' time for the same set, and one Fréchet distance by the
covariance route (`fid.frechet_distance`) and by the sample-space route the interval uses (`frechet_distance_low_rank`).
Measured on the held-out people of ``docs/splits/shared-dev-data.json`` (34 clips; ``talkinghead prepare
../shared/data/videos --size 128 --max-frames 32 --split docs/splits/shared-dev-data.json --part test``): intervals
0.43 s per set of 272 frames against 9.4 s for its features; covariance route 0.79 s, sample route 0.012 s, the
two 6e-6 apart (relative).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import cv2
import numpy as np

DATA = Path(os.environ.get("TALKINGHEAD_REALISM_DATA", "/work/data/test128"))
FRAMES_PER_SET = 8


def _sets(index) -> dict[str, list[np.ndarray]]:
    from talkinghead.evaluate.frames import load_frames
    from talkinghead.metrics.baselines import copy_source, mesh_warp

    sets: dict[str, list[np.ndarray]] = {name: [] for name in (
        "ground_truth", "other_real", "blur_sigma1", "blur_sigma2", "blur_sigma3", "mesh_warp", "copy_source")}
    for video in index.videos:
        if video.num_frames < 2 * FRAMES_PER_SET:
            continue
        chosen = random.Random(f"realism/{video.key}").sample(range(video.num_frames), 2 * FRAMES_PER_SET)
        images, landmarks = load_frames(index, video.video_index, chosen, index.image_size)
        targets, sources = images[:FRAMES_PER_SET], images[FRAMES_PER_SET:]
        target_points, source_points = landmarks[:FRAMES_PER_SET], landmarks[FRAMES_PER_SET:]
        sets["ground_truth"] += list(targets)
        sets["other_real"] += list(sources)
        for sigma in (1, 2, 3):
            sets[f"blur_sigma{sigma}"] += [cv2.GaussianBlur(t, (0, 0), sigma) for t in targets]
        sets["mesh_warp"] += [mesh_warp(sources, source_points, p) for p in target_points]
        sets["copy_source"] += [copy_source(sources, source_points, p) for p in target_points]
    return sets


def case_fd_mobilenet_blur_ranking() -> dict:
    """FD-MobileNetV2 and relative sharpness of real, blurred, mesh-warp and copy-source frames vs held-out truth."""
    from talkinghead.data.index import load_index
    from talkinghead.metrics.fid import (
        feature_statistics,
        frechet_distance,
        frechet_distance_interval,
        frechet_distance_low_rank,
        kernel_distance_interval,
    )
    from talkinghead.metrics.realism import (
        FD_LABEL,
        MobileNetV2Embedding,
        frechet_distance_mobilenet,
        relative_sharpness,
    )

    if not (DATA / "index.json").is_file():
        return {"skipped": f"no dataset at {DATA} (set TALKINGHEAD_REALISM_DATA)"}
    index = load_index(DATA)
    sets = _sets(index)
    embedding = MobileNetV2Embedding()
    started = time.perf_counter()
    features = {name: embedding.features(images) for name, images in sets.items()}
    feature_ms = (time.perf_counter() - started) / sum(len(v) for v in sets.values()) * 1000.0
    blur = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    started = time.perf_counter()
    for _ in range(50):
        cv2.GaussianBlur(blur, (0, 0), 2.0)
    blur_ms = (time.perf_counter() - started) / 50 * 1000.0
    truth = sets["ground_truth"]
    result: dict = {"label": FD_LABEL, "dataset": str(DATA), "images_per_set": len(truth),
                    "videos": len(truth) // FRAMES_PER_SET}
    for name, images in sets.items():
        result[f"fd_mobilenet_{name}"] = round(frechet_distance_mobilenet(features["ground_truth"], features[name]), 3)
        sharpness = [s for o, t in zip(images, truth, strict=True) if (s := relative_sharpness(o, t)) is not None]
        result[f"sharpness_{name}"] = round(float(np.mean(sharpness)), 4)
    fd = {name: result[f"fd_mobilenet_{name}"] for name in sets}
    result["blur_ranked_worse_than_other_real"] = all(fd[f"blur_sigma{s}"] > fd["other_real"] for s in (1, 2, 3))
    result["blur_ranked_worse_than_mesh_warp"] = {f"sigma{s}": fd[f"blur_sigma{s}"] > fd["mesh_warp"]
                                                  for s in (1, 2, 3)}
    videos = np.repeat(np.arange(len(truth) // FRAMES_PER_SET), FRAMES_PER_SET)
    started = time.perf_counter()
    for name in sets:
        fd_interval = frechet_distance_interval(features["ground_truth"], features[name], videos, videos)
        kid_interval = kernel_distance_interval(features["ground_truth"], features[name], videos, videos)
        result[f"kid_mobilenet_{name}"] = round(kid_interval["value"], 5)
        if fd_interval["low"] is not None:
            result[f"fd_mobilenet_{name}_half_width"] = round((fd_interval["high"] - fd_interval["low"]) / 2, 3)
            result[f"kid_mobilenet_{name}_half_width"] = round((kid_interval["high"] - kid_interval["low"]) / 2, 5)
    result["fd_kid_intervals_ms_per_set"] = round((time.perf_counter() - started) / len(sets) * 1000.0, 1)
    result["fd_features_ms_per_set"] = round(feature_ms * len(truth), 1)
    started = time.perf_counter()
    covariance_route = frechet_distance(*feature_statistics(features["ground_truth"]),
                                        *feature_statistics(features["mesh_warp"]))
    result["fd_covariance_route_ms"] = round((time.perf_counter() - started) * 1000.0, 1)
    started = time.perf_counter()
    sample_route = frechet_distance_low_rank(features["ground_truth"], features["mesh_warp"])
    result["fd_sample_route_ms"] = round((time.perf_counter() - started) * 1000.0, 1)
    result["fd_routes_relative_difference"] = float(f"{abs(sample_route / covariance_route - 1):.2e}")
    result["fd_features_ms_per_image"] = round(feature_ms, 2)
    result["opencv_blur_128_ms"] = round(blur_ms, 4)
    return result
