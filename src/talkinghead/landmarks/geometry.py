"""Measures of a face's 68 iBUG points that several rooms share.

`inter_ocular_distance` is the project's one face-size unit: the distance between the OUTER eye corners,
points 36 and 45 (the subject's right eye's outer corner and the left eye's). It is the standard normaliser of
landmark metrics (AKD in FOMM's protocol, NME of the 300-W benchmark), and the smoothers measure landmark speeds
in it (``OneEuroFilter`` ``beta`` per inter-ocular distance per second), so one smoothing setting works at any
resolution. The eye-centre distance (mean of 36-41 to mean of 42-47), used by earlier code, is about 0.7 of it
and is not used anywhere any more.
"""

from __future__ import annotations

import numpy as np

RIGHT_EYE_OUTER = 36
"""The subject's right eye's outer corner (image left in a frontal face)."""
LEFT_EYE_OUTER = 45
"""The subject's left eye's outer corner."""


def inter_ocular_distance(points: np.ndarray) -> np.ndarray | float:
    """Distance between the outer eye corners (points 36 and 45) of landmarks [..., 68, 2]: a float for one face
    [68, 2], an array [T] for a sequence [T, 68, 2]."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim < 2 or points.shape[-2:] != (68, 2):
        raise ValueError(f"inter_ocular_distance needs landmarks [..., 68, 2], got {points.shape}")
    distance = np.linalg.norm(points[..., LEFT_EYE_OUTER, :] - points[..., RIGHT_EYE_OUTER, :], axis=-1)
    return float(distance) if distance.ndim == 0 else distance
