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


def open_mouth(points: np.ndarray, by: float) -> np.ndarray:
    """Landmarks [68, 2] with the lower lip and the chin lowered by ``by`` inter-ocular distances (the mouth corners
    by 0.3 of it, the chin tapering along the jaw), as a talker opening the mouth: a driver shape for a face whose
    own sources show the mouth closed (tests, the model card's open-mouth pictures). float32 [68, 2]."""
    moved = np.asarray(points, np.float32).copy()
    drop = by * float(inter_ocular_distance(moved))
    moved[[*range(55, 60), *range(64, 68)], 1] += drop  # lower outer and inner lip
    moved[[54, 48], 1] += 0.3 * drop  # the mouth corners a little
    moved[5:12, 1] += drop * np.array([0.3, 0.6, 0.9, 1.0, 0.9, 0.6, 0.3], np.float32)  # the chin
    return moved


def close_eyes(points: np.ndarray, keep: float = 0.0) -> np.ndarray:
    """Landmarks [68, 2] with both eyes' lid points (37, 38, 40, 41 and 43, 44, 46, 47) moved onto the line through
    that eye's corners, keeping ``keep`` of their distance from it (0: shut, 1: unchanged), as in a blink: a driver
    shape for a face whose sources show the eyes open (tests, the model card's blink pictures). float32 [68, 2]."""
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"close_eyes keeps a share in [0, 1] of the lids' distance, got {keep}")
    moved = np.asarray(points, np.float32).copy()
    for outer, inner, lids in ((36, 39, (37, 38, 40, 41)), (42, 45, (43, 44, 46, 47))):
        a, axis = moved[outer], moved[inner] - moved[outer]
        for i in lids:
            on_line = a + float(np.dot(moved[i] - a, axis) / max(float(np.dot(axis, axis)), 1e-12)) * axis
            moved[i] = on_line + keep * (moved[i] - on_line)
    return moved
