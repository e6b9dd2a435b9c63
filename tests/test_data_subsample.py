"""The time-thinned dataset (`talkinghead.data.subsample`): same videos, every N-th frame byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from talkinghead.data.index import build_index, encode_frame, frame_path, load_index, write_video_folder
from talkinghead.data.subsample import kept_frames, subsample_dataset

SIZE = 32


def _dataset(root: Path, counts: dict[str, int]) -> Path:
    for key, count in counts.items():
        rng = np.random.default_rng(count)
        frames = [encode_frame(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)) for _ in range(count)]
        points = rng.uniform(4, SIZE - 4, (count, 68, 2)).astype(np.float32)
        meta = {"key": key, "identity": key.split("/")[0], "image_size": SIZE,
                "yaw": [float(t) for t in range(count)], "source_frames": [100 + t for t in range(count)],
                "crop_boxes": [[t, 0, SIZE] for t in range(count)], "detected": [0, 5, 10, 15][: 1 + count // 5],
                "source_size": [640, 480]}
        write_video_folder(root / "videos" / key, frames, points, meta)
    build_index(root, {"image_size": SIZE, "crop": {}, "landmark_backend": "test",
                       "identity_split": {"part": "train", "sha256": "x"}})
    return root


def test_kept_frames_rules():
    assert kept_frames(23, 10) == [0, 10, 20]
    assert kept_frames(23, 10, offset=3) == [3, 13]
    assert kept_frames(5, 10) == [0, 1]  # an episode needs two frames
    with pytest.raises(ValueError):
        kept_frames(10, 0)
    with pytest.raises(ValueError):
        kept_frames(10, 4, offset=4)


def test_subsample_keeps_videos_and_copies_frames_exactly(tmp_path):
    source = _dataset(tmp_path / "full", {"a/clip0": 23, "a/clip1": 12, "b/clip0": 4})
    out = tmp_path / "thin"
    new = subsample_dataset(source, out, every=5)
    full, thin = load_index(source), load_index(out, deep=True)
    assert [v.key for v in thin.videos] == [v.key for v in full.videos]
    assert [v.num_frames for v in thin.videos] == [5, 3, 2]
    assert new["content_hash"] != full.content_hash
    assert thin.identities == full.identities
    assert json.loads((out / "index.json").read_text())["identity_split"] == {"part": "train", "sha256": "x"}
    # frame 2 of the thinned first video is frame 10 of the original, byte for byte; landmarks likewise
    thinned, original = frame_path(out / thin.videos[0].path, 2), frame_path(source / full.videos[0].path, 10)
    assert thinned.read_bytes() == original.read_bytes()
    np.testing.assert_array_equal(thin.landmarks(0), full.landmarks(0)[[0, 5, 10, 15, 20]])
    meta = thin.meta(0)
    assert meta["yaw"] == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert meta["source_frames"] == [100, 105, 110, 115, 120]
    assert meta["crop_boxes"][1] == [5, 0, SIZE]
    assert meta["detected"] == [0, 1, 2, 3]  # frames 0, 5, 10, 15 renumbered
    assert meta["source_size"] == [640, 480]  # not a per-frame field
    assert meta["subsampled"]["every"] == 5 and meta["subsampled"]["source_content_hash"] == full.content_hash
    # a short video: its first two frames, and only the detections among them
    short = thin.meta(2)
    assert short["yaw"] == [0.0, 1.0] and short["detected"] == [0]


def test_subsample_refuses_an_existing_output(tmp_path):
    source = _dataset(tmp_path / "full", {"a/clip0": 6, "b/clip0": 6})
    (tmp_path / "thin").mkdir()
    with pytest.raises(FileExistsError, match="thin"):
        subsample_dataset(source, tmp_path / "thin", every=2)
    assert not (tmp_path / "thin.partial").exists()
