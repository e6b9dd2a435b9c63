"""Landmark tracking vs per-frame detection (issue 3: per-frame detection is the slow path), and head yaw.

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


@case("head_yaw")
def head_yaw() -> dict:
    """`landmarks.pose.estimate_yaw` (prepare writes it per frame): ms per frame next to dlib tracking's ms per
    frame on the same clip, measured in this run (what yaw adds to `prepare`), and its error on synthetic heads of
    random shape and pose (yaw ±40°, pitch and roll ±12°), where the true yaw is known."""
    from talkinghead.data.synthetic import Identity
    from talkinghead.data.synthetic.geometry import frame_landmarks
    from talkinghead.data.synthetic.motion import FramePose
    from talkinghead.landmarks.pose import estimate_yaw

    rng = np.random.default_rng(0)
    truth = rng.uniform(-40, 40, 200)
    faces = np.stack([frame_landmarks(Identity.sample(i), FramePose(yaw=float(y), pitch=float(rng.uniform(-12, 12)),
                                                                    roll=float(rng.uniform(-12, 12))), 128)
                      for i, y in enumerate(truth)])
    estimate, yaw_s = _timed(lambda: estimate_yaw(faces, 128))
    error = np.abs(estimate - truth)
    figures: dict = {"synthetic_faces": len(faces), "yaw_ms_per_frame": round(1e3 * yaw_s / len(faces), 3),
                     "synthetic_mean_abs_error_deg": round(float(error.mean()), 2),
                     "synthetic_max_abs_error_deg": round(float(error.max()), 2)}
    if (SHARED_DATA / "videos").is_dir():
        frames = list(itertools.islice(VideoReader(SHARED_DATA / "videos" / CLIPS["vox224"]), MAX_FRAMES))
        tracked, tracked_s = _timed(lambda: track_video(frames, get_backend("dlib")))
        _, clip_yaw_s = _timed(lambda: estimate_yaw(tracked.points, frames[0].shape[1::-1]))
        figures.update(tracking_ms_per_frame=round(1e3 * tracked_s / len(frames), 2),
                       clip_yaw_ms_per_frame=round(1e3 * clip_yaw_s / len(frames), 3),
                       yaw_share_of_tracking=round(clip_yaw_s / tracked_s, 4))
    return figures
