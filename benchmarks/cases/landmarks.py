"""Landmark tracking vs per-frame detection (issue 3: per-frame detection is the slow path).

* ``landmarks_tracking``: on two shared clips (a 224x224 VoxCeleb2 crop and the 720x1280 vertical selfie),
  frames/s of `track_video` with its defaults (full detection every 25 frames, a local look every 3) and
  with ``detect_every=1`` (per-frame detection), CPU time of this process (the 2 cores are shared), plus
  their agreement: mean and max landmark distance in inter-ocular distances (outer eye corners).
  Frames are decoded once beforehand: decoding is not timed. ``MAX_FRAMES`` keeps the run short.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.cases import case
from talkinghead.landmarks import get_backend, track_video
from talkinghead.landmarks.geometry import inter_ocular_distance
from talkinghead.video import VideoReader

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("TALKINGHEAD_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
CLIPS = {"vox224": "voxceleb2/id00017/OLguY5ofUrY/00041.mp4", "selfie720x1280": "lp__d13_man_selfie_vertical.mp4"}
MAX_FRAMES = 100


def _timed(function):
    start = time.process_time()
    result = function()
    return result, time.process_time() - start


@case("landmarks_tracking")
def landmarks_tracking() -> dict:
    """Landmark tracking frames/s vs per-frame detection, and their agreement, on two shared clips."""
    if not (SHARED_DATA / "videos").is_dir():
        return {"skipped": f"shared data not found at {SHARED_DATA}"}
    backend = get_backend("dlib")
    figures: dict = {"frames_per_clip": MAX_FRAMES}
    for label, clip in CLIPS.items():
        frames = list(itertools.islice(VideoReader(SHARED_DATA / "videos" / clip), MAX_FRAMES))
        tracked, tracked_s = _timed(lambda frames=frames: track_video(frames, backend))
        per_frame, per_frame_s = _timed(lambda frames=frames: track_video(frames, backend, detect_every=1))
        inter_ocular = inter_ocular_distance(per_frame.points)
        error = np.linalg.norm(tracked.points - per_frame.points, axis=-1).mean(axis=1) / inter_ocular
        figures[label] = {
            "tracking_frames_per_s": round(len(frames) / tracked_s, 1),
            "per_frame_detection_frames_per_s": round(len(frames) / per_frame_s, 1),
            "speedup": round(per_frame_s / tracked_s, 2),
            "full_detections": int(tracked.detected.sum()),
            "mean_error_iod": round(float(error.mean()), 4),
            "max_error_iod": round(float(error.max()), 4),
        }
    return figures
