"""Files for the web-app and live tests: a tiny-64 export and avatar (random weights: nothing here depends on what a
model learned), synthetic pictures and drivers from the project's renderer (dlib finds these faces)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from _inference_helpers import tiny_networks

SOURCE_IDENTITY = 3
"""A synthetic person dlib detects in a full 256 px render (the source picture)."""
DRIVER = (0, 7)
"""(identity, motion) seeds of a driver dlib tracks on every frame once cropped to 256 px."""


def write_export(path: Path, overrides: list[str] | None = None) -> Path:
    """A tiny-64 inference export (E, G with P, D's V/w0/b) with random weights."""
    from talkinghead.checkpoint import model_state, prefixed, save_checkpoint
    from talkinghead.config import apply_overrides

    config, embedder, generator, discriminator = tiny_networks()
    config = apply_overrides(config, overrides or [])
    tensors = {**prefixed("embedder.", model_state(embedder)), **prefixed("generator.", model_state(generator)),
               **prefixed("discriminator.", {k: v for k, v in model_state(discriminator).items()
                                             if not k.startswith("video_embeddings.")})}
    return save_checkpoint(path, tensors, config, kind="export")


def source_picture(size: int = 256) -> np.ndarray:
    """A full synthetic portrait (head, shoulders, background), uint8 RGB."""
    from talkinghead.data.synthetic import SyntheticVideo

    frames, _, _ = SyntheticVideo(SOURCE_IDENTITY, 1, 1).render(size)
    return frames[0]


def driver_clip(frames: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic talking person framed by the crop policy: (frames [T, S, S, 3], landmarks [T, 68, 2])."""
    from talkinghead.config import DataConfig
    from talkinghead.data.prepare import crop_clip
    from talkinghead.data.synthetic import SyntheticVideo

    data = DataConfig()
    images, points, _ = SyntheticVideo(DRIVER[0], DRIVER[1], frames).render(size)
    cropped, cropped_points, _ = crop_clip(images, points, size, 25.0, data.crop_scale, data.crop_lift)
    return cropped, cropped_points


def write_driver(path: Path, frames: int, fps: float, size: int = 256) -> Path:
    from talkinghead.video import VideoWriter

    images, _ = driver_clip(frames, size)
    with VideoWriter(path, fps=fps) as writer:
        for image in images:
            writer.write(image)
    return path


def tiny_avatar(landmarks=None):
    """A tiny-64 `Avatar` (random G, ψ = 0) at rest on a synthetic face; ``landmarks`` as in `Avatar`."""
    from talkinghead.inference import Avatar

    config, _, generator, _ = tiny_networks()
    size = config.model.image_size
    _, points = driver_clip(1, size)
    psi = torch.zeros(generator.num_adain_params)
    return Avatar(generator, psi, points[:1], config, landmarks=landmarks, info={"mode": "feed-forward", "shots": 1})
