"""A synthetic person as a driving video: rendered, framed by the crop policy, written as H.264 at 25 fps.

The app's sample driver and the showcase's (README, demo) driver are this one function with their own seeds.
"""

from __future__ import annotations

import os

import numpy as np


def write_driver_video(path: str | os.PathLike[str], identity_seed: int, motion_seed: int, frames: int, size: int,
                       data=None) -> np.ndarray:
    """Render `SyntheticVideo(identity_seed, motion_seed, frames)` at ``size``, crop it with ``data``'s policy (a
    `DataConfig`; default settings when None) and write it to ``path``; returns the landmarks [T, 68, 2] in the
    written frames' pixels."""
    from talkinghead.config import DataConfig
    from talkinghead.data.prepare import crop_clip
    from talkinghead.data.synthetic.render import SyntheticVideo
    from talkinghead.video import VideoWriter

    data = data or DataConfig()
    images, points, _ = SyntheticVideo(identity_seed, motion_seed, frames).render(size)
    cropped, cropped_points, _ = crop_clip(images, points, size, 25.0, data.crop_scale, data.crop_lift)
    with VideoWriter(path, fps=25.0, metadata={"comment": "synthetic person rendered by talkinghead"}) as writer:
        for frame in cropped:
            writer.write(frame)
    return np.asarray(cropped_points, np.float32)
