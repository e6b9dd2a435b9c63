"""Synthetic talking-head renderer speed: frames/s on one core at 64, 128 and 256 px (target: >= 200 at 128).

Renders clips of several identities (their geometry and background caches are warmed by one frame first, as in
a dataset build where each identity renders many frames) and reports frames per second per size, plus the cost of
landmarks alone (no drawing). A 128x128 OpenCV Gaussian blur is timed in the same run as a fixed unit of CPU work.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from benchmarks.cases import case
from talkinghead.data.synthetic import Identity, Motion, frame_landmarks, render_frame

NUM_IDENTITIES = 6
FRAMES_PER_IDENTITY = 40


def _frames_per_second(size: int) -> float:
    work = []
    for i in range(NUM_IDENTITIES):
        identity, motion = Identity.sample(500 + i), Motion.sample(900 + i, FRAMES_PER_IDENTITY)
        render_frame(identity, motion.frame(0), size)  # warm the per-identity caches
        work.append((identity, [motion.frame(t) for t in range(FRAMES_PER_IDENTITY)]))
    started = time.perf_counter()
    for identity, poses in work:
        for pose in poses:
            render_frame(identity, pose, size)
    return NUM_IDENTITIES * FRAMES_PER_IDENTITY / (time.perf_counter() - started)


@case("synthetic_render")
def synthetic_render() -> dict:
    """Synthetic talking heads: frames/s at 64/128/256 px on one core."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        figures = {f"frames_per_s_{size}px": round(_frames_per_second(size), 1) for size in (64, 128, 256)}
        identity, motion = Identity.sample(1), Motion.sample(2, 200)
        poses = [motion.frame(t) for t in range(200)]
        started = time.perf_counter()
        for pose in poses:
            frame_landmarks(identity, pose, 128)
        figures["landmarks_only_per_s_128px"] = round(200 / (time.perf_counter() - started), 1)
        image = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
        started = time.perf_counter()
        for _ in range(200):
            cv2.GaussianBlur(image, (9, 9), 2.0)
        figures["reference_blur_128px_per_s"] = round(200 / (time.perf_counter() - started), 1)
    finally:
        cv2.setNumThreads(threads)
    figures["target_frames_per_s_128px"] = 200
    return figures
