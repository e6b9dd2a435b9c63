"""The landmark image y: the 68 points drawn as coloured polylines on black (paper-notes §1.5).

One function, `landmark_image`, used by training, fine-tuning and inference. Colours (RGB) follow Samsung's
stick-man code ([LPD]/[BL]): jaw white; right brow red; left brow green; nose blue (bridge 27-30 and lower
nose 31-35 as two polylines); right eye magenta, closed; left eye cyan, closed; outer lips (48-59) and inner
lips (60-67) yellow, closed. "Right"/"left" are the person's own (iBUG order: points 36-41 are the eye on the
image's left). Lines are anti-aliased with sub-pixel precision; their width is proportional to the image
size (2 px at 256, ``DataConfig.landmark_line_width``), at least 1 px.
"""

from __future__ import annotations

import cv2
import numpy as np

# (first index, last index inclusive, RGB colour, closed)
PARTS: tuple[tuple[int, int, tuple[int, int, int], bool], ...] = (
    (0, 16, (255, 255, 255), False),  # jaw
    (17, 21, (255, 0, 0), False),  # right brow
    (22, 26, (0, 255, 0), False),  # left brow
    (27, 30, (0, 0, 255), False),  # nose bridge
    (31, 35, (0, 0, 255), False),  # lower nose (nostrils)
    (36, 41, (255, 0, 255), True),  # right eye
    (42, 47, (0, 255, 255), True),  # left eye
    (48, 59, (255, 255, 0), True),  # outer lips
    (60, 67, (255, 255, 0), True),  # inner lips
)
LINE_WIDTH_FRACTION = 2.0 / 256.0
_SHIFT = 4  # sub-pixel bits for cv2 drawing: coordinates in 1/16 px


def line_width_for(size: int, fraction: float = LINE_WIDTH_FRACTION) -> int:
    """Line width in pixels for an image of side ``size`` (2 at 256, 1 at 128 and below, 4 at 512)."""
    return max(1, int(round(size * fraction)))


def landmark_image(points: np.ndarray, size: int, line_width: float | None = None) -> np.ndarray:
    """Draw 68 landmarks ``[68, 2]`` (x, y in pixels of a ``size`` x ``size`` image) -> uint8 RGB
    ``[size, size, 3]`` on black. ``line_width`` in pixels; None = proportional to ``size``.

    Points outside the image are drawn clipped; non-finite points are an error.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"landmark_image needs [68, 2] points (iBUG 68), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("landmark_image: points contain NaN or infinite values")
    size = int(size)
    if size <= 0:
        raise ValueError(f"landmark_image: size must be positive, got {size}")
    thickness = line_width_for(size) if line_width is None else max(1, int(round(line_width)))
    image = np.zeros((size, size, 3), dtype=np.uint8)
    # Clip far-away points so int32 fixed-point coordinates cannot overflow.
    fixed = np.rint(np.clip(points, -4 * size, 5 * size) * (1 << _SHIFT)).astype(np.int32)
    for first, last, colour, closed in PARTS:
        cv2.polylines(image, [fixed[first:last + 1].reshape(-1, 1, 2)], closed, colour, thickness,
                      lineType=cv2.LINE_AA, shift=_SHIFT)
    return image


def draw_landmarks(points: np.ndarray, size: int, config) -> np.ndarray:
    """The landmark image a model was trained on: `landmark_image` with the line width of ``config`` (a
    `talkinghead.config.Config`; ``config.data.landmark_line_width`` is a fraction of the image size)."""
    return landmark_image(points, size, line_width_for(size, config.data.landmark_line_width))
