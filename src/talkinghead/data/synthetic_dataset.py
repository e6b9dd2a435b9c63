"""Datasets of synthetic talking heads (`talkinghead.data.synthetic`) in the on-disk format of
`talkinghead.data.prepare`, with the renderer's exact landmarks, and `crop_clip`: the one crop policy on a clip
whose landmarks are known (what the demo, the app's examples and the benchmarks use on rendered clips).

Split from `talkinghead.data.prepare` (which still exports these names) to keep each module to one job.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.data import index as dsindex
from talkinghead.data.settings import STATE_DIR, PrepareSettings, check_settings, key_id

log = logging.getLogger(__name__)


def crop_clip(frames: np.ndarray, points: np.ndarray, size: int, fps: float, scale: float, lift: float,
              smoothing_seconds: float = 0.3) -> tuple[np.ndarray, np.ndarray, list]:
    """The one crop policy on a clip with known landmarks (smoothed boxes): frames [T, S, S, 3] at ``size``,
    landmarks [T, 68, 2] in crop pixels, and the (rounded) boxes."""
    from talkinghead.landmarks.crop import crop_boxes, crop_image

    boxes = [box.rounded() for box in crop_boxes(points, fps=fps, scale=scale, lift=lift,
                                                 smoothing_seconds=smoothing_seconds)]
    cropped = np.empty((len(frames), size, size, 3), np.uint8)
    cropped_points = np.empty_like(points)
    for t, box in enumerate(boxes):
        cropped[t], transform = crop_image(frames[t], box, size)
        cropped_points[t] = transform.to_crop(points[t])
    return cropped, cropped_points, boxes


def synthetic_seeds(seed: int, identity: int, clip: int) -> tuple[int, int]:
    """(identity seed, motion seed) of clip ``clip`` of synthetic identity ``identity`` in a dataset of ``seed``."""
    digest = hashlib.sha256(f"talkinghead-synthetic:{seed}:{identity}:{clip}".encode()).digest()
    identity_seed = int.from_bytes(hashlib.sha256(f"talkinghead-synthetic:{seed}:{identity}".encode()).digest()[:4],
                                   "little")
    return identity_seed, int.from_bytes(digest[:4], "little")


def write_synthetic_dataset(out: str | os.PathLike[str], num_identities: int, videos_per_identity: int,
                            frames_per_video: int, size: int, seed: int = 0, crop: bool = True,
                            fps: float = 25.0, name_prefix: str = "syn") -> dict[str, Any]:
    """Write a dataset of synthetic talking heads (`talkinghead.data.synthetic`) in the same on-disk format
    as `prepare_dataset`, with the renderer's exact landmarks (no detection). Returns the index.

    Identity ``i`` is ``{name_prefix}{i:04d}`` (give held-out sets their own prefix so their names never
    collide with training identities); its clip ``j`` has key ``{name_prefix}{i:04d}/clip{j:02d}``; the seeds
    come from `synthetic_seeds` and are saved in each ``meta.json`` (``identity_seed``, ``motion_seed``), so
    evaluation can render identity A with B's motion as ground truth. With ``crop`` (default) frames are
    rendered at ``size`` and then framed by the one crop policy (`talkinghead.landmarks.crop`, smoothed boxes,
    black padding), exactly as real videos are, so the demo trains on the framing inference uses. Resumable
    like `prepare_dataset` (complete clips are kept; settings must match).
    """
    from talkinghead.data.synthetic import SyntheticVideo

    for name, value in (("num_identities", num_identities), ("videos_per_identity", videos_per_identity),
                        ("frames_per_video", frames_per_video)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    settings = PrepareSettings(image_size=size, landmark_backend="synthetic", min_frames=1)
    settings.validate()
    output = Path(out)
    output.mkdir(parents=True, exist_ok=True)
    check_settings(output, settings)
    temp_root = output / STATE_DIR / "tmp" / "synthetic"
    shutil.rmtree(temp_root, ignore_errors=True)
    temp_root.mkdir(parents=True)
    written = 0
    for i in range(num_identities):
        identity = f"{name_prefix}{i:04d}"
        for j in range(videos_per_identity):
            key = f"{identity}/clip{j:02d}"
            final = output / dsindex.VIDEOS_DIR / key
            if (final / dsindex.META_FILE).exists():
                continue
            identity_seed, motion_seed = synthetic_seeds(seed, i, j)
            frames, points, _ = SyntheticVideo(identity_seed, motion_seed, frames_per_video).render(size)
            boxes_meta: list[list[int]] = []
            if crop:
                frames, points, boxes = crop_clip(frames, points, size, fps, settings.crop_scale,
                                                  settings.crop_lift, settings.crop_smoothing_seconds)
                boxes_meta = [[int(b.left), int(b.top), int(b.size)] for b in boxes]
            meta = {"key": key, "identity": identity, "source": f"synthetic:{identity_seed}:{motion_seed}",
                    "source_kind": "synthetic", "fps": fps, "source_fps": fps, "source_size": [size, size],
                    "source_frames": list(range(frames_per_video)), "dropped_source_frames": [],
                    "detected": list(range(frames_per_video)), "crop_boxes": boxes_meta, "image_size": size,
                    "crop": settings.index_settings()["crop"] if crop else {"policy": "none"},
                    "landmark_backend": "synthetic", "identity_seed": identity_seed, "motion_seed": motion_seed}
            temp = temp_root / key_id(key)
            dsindex.write_video_folder(temp, [dsindex.encode_frame(f) for f in frames], points, meta)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(temp, final)
            written += 1
    shutil.rmtree(temp_root, ignore_errors=True)
    log.info("%s: wrote %d synthetic clips", output, written)
    return dsindex.build_index(output, settings.index_settings())
