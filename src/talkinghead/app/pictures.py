"""Pictures the app shows or offers: the previews (landmarks and crop box drawn on an upload, the landmark image
over the crop) and the synthetic sample driver."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SAMPLE_DRIVER = (0, 7, 75)
"""(identity seed, motion seed, frames) of the sample driver: a synthetic person rendered on demand, 3 s at 25 fps."""
PREVIEW_SIDE = 384
"""Longest side of the preview pictures (landmarks and crop box drawn on the upload)."""


def annotate_picture(image: np.ndarray, points: np.ndarray, box: tuple[float, float, float] | None,
                     crop_size: int | None) -> np.ndarray:
    """The picture (scaled to at most `PREVIEW_SIDE`) with the landmarks as dots and the crop box as a square.
    ``points`` are in crop pixels when ``box`` and ``crop_size`` are given (a prepared source), else in the
    picture's pixels."""
    import cv2

    points = np.asarray(points, dtype=np.float64)
    if box is not None and crop_size is not None:
        left, top, side = box
        points = points * (side / crop_size) + np.array([left, top])
    scale = min(1.0, PREVIEW_SIDE / max(image.shape[:2]))
    shown = fit_within(image, PREVIEW_SIDE).copy()
    radius = max(2, round(max(shown.shape[:2]) / 150))
    for x, y in points * scale:
        cv2.circle(shown, (round(x), round(y)), radius, (0, 255, 0), -1, cv2.LINE_AA)
    if box is not None:
        left, top, side = (value * scale for value in box)
        cv2.rectangle(shown, (round(left), round(top)), (round(left + side), round(top + side)), (255, 200, 0), 2)
    return shown


def overlay_landmarks(crop: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The crop with its landmark image (what G is driven by) drawn over it."""
    from talkinghead.landmarks import landmark_image

    drawing = landmark_image(points, crop.shape[0])
    lines = drawing.max(axis=2, keepdims=True) > 0
    return np.where(lines, drawing, crop).astype(np.uint8)


def fit_within(image: np.ndarray, side: int) -> np.ndarray:
    import cv2

    scale = side / max(image.shape[:2])
    if scale >= 1.0:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def write_sample_driver(path: str | os.PathLike[str], data=None, size: int = 256) -> Path:
    """Render the sample driver: a synthetic person (`SyntheticVideo`) talking for 3 s, framed by the crop policy
    (``data``: a `DataConfig`, default settings when None), H.264 at 25 fps."""
    from talkinghead.data.synthetic.driver import write_driver_video

    write_driver_video(path, *SAMPLE_DRIVER, size, data)
    return Path(path)
