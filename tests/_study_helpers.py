"""A small evaluation folder with saved study frames, written with the evaluation's own writer
(`evaluate.saved_frames.save_study_frames`): person "anna" has two test videos (real frames of a triplet come
from her other video), "ben" one (they come from his other saved frames)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from talkinghead.evaluate.saved_frames import save_study_frames

METHODS = ("copy-source", "mesh-warp", "ours-FF")
VIDEOS = (("anna/clip0", "anna", (3, 7, 9)), ("anna/clip1", "anna", (2, 4, 6)), ("ben/clip0", "ben", (1, 5, 8)))
SHOTS = 1


def write_evaluation(out: Path) -> Path:
    rng = np.random.default_rng(0)
    splits = []
    for key, identity, frames in VIDEOS:
        real = rng.integers(0, 256, (len(frames), 32, 32, 3), dtype=np.uint8)
        outputs = {m: list(rng.integers(0, 256, (len(frames), 32, 32, 3), dtype=np.uint8)) for m in METHODS}
        save_study_frames(out, key, SHOTS, frames, real, outputs, count=len(frames))
        splits.append({"key": key, "video_index": len(splits), "identity": identity, "target_frames": list(frames),
                       "source_frames": {"1": [0]}, "driver": None})
    (out / "splits.json").write_text(json.dumps(splits))
    return out
