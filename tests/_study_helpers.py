"""Small evaluation folders with saved study frames, written with the evaluation's own writer
(`evaluate.saved_frames.save_study_frames`). `VIDEOS`: "anna" and "ben" have two test videos each (a triplet's
real frames come from the person's other video), "carl" one (the paper's protocol has no real frame for him, so his
generated frames get no triplet). `ONE_VIDEO_EACH`: what an evaluation with ``--per-identity 1`` saves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from talkinghead.evaluate.saved_frames import save_study_frames

METHODS = ("copy-source", "mesh-warp", "ours-FF")
VIDEOS = (("anna/clip0", "anna", (3, 7, 9, 10)), ("anna/clip1", "anna", (2, 4, 6, 8)),
          ("ben/clip0", "ben", (1, 5, 8, 9)), ("ben/clip1", "ben", (0, 3, 6, 7)),
          ("carl/clip0", "carl", (2, 3, 4, 5)))
ONE_VIDEO_EACH = (("anna/clip0", "anna", (3, 7, 9, 11)), ("ben/clip0", "ben", (1, 5, 8, 12)))
SHOTS = 1


def write_evaluation(out: Path, videos: tuple = VIDEOS) -> Path:
    rng = np.random.default_rng(0)
    splits = []
    for key, identity, frames in videos:
        real = rng.integers(0, 256, (len(frames), 32, 32, 3), dtype=np.uint8)
        outputs = {m: list(rng.integers(0, 256, (len(frames), 32, 32, 3), dtype=np.uint8)) for m in METHODS}
        save_study_frames(out, key, SHOTS, frames, real, outputs, count=len(frames))
        splits.append({"key": key, "video_index": len(splits), "identity": identity, "target_frames": list(frames),
                       "source_frames": {"1": [0]}, "driver": None})
    (out / "splits.json").write_text(json.dumps(splits))
    return out
