"""Lip normalization (issue 25, item 6): the lips of a face closed, so that relative driving starts from a closed mouth.

Relative retargeting (`landmarks.retarget`) adds the driver's motion, measured from a reference driver frame, to the
source's own landmarks. A portrait whose mouth is open (a laugh, a singer, a painting caught mid-word) therefore
keeps its opening on top of the driver's: the driver closes the mouth and the avatar's stays open by the source's
gap; the driver opens it and the avatar's opens twice as wide. LivePortrait drives such a source closed first.

Here the same idea is applied to the two landmark sets the motion is measured between: the source's and the driver
reference's mouths are both closed (`close_mouth`) before the displacement is taken, so the avatar's mouth opens by
the driver's opening itself (scaled to the source's mouth), whatever either face's mouth did in its own frame. The
sources' pixels and their true landmarks are untouched: the warp generator still warps the open source, and where
the driver's mouth is closed it pulls the source's lips together over the interior.

Closing, in the face's upright frame (the outer eye corners level): each lower inner-lip point rises to its upper
partner (67→61, 66→62, 65→63); the lower outer lip rises by the mean gap g and the mouth corners by 0.3 g. The jaw
line stays: raising the chin with the lip too (by g, tapering along the jaw, the inverse of
`landmarks.geometry.open_mouth`) measured worse on the validation people (`evaluate.lip_normalization`, shipped
stop-24 model, 10 clips: whole-frame L1 +0.0016 ± 0.0017 against the plain rule with the chin raised, −0.0007 ±
0.0003 with it kept, 10 of 10 clips better; mouth L1 −0.0097 and −0.0112). A closed mouth (g ≤ 0) is returned
unchanged.

`DEFAULT` (on) was chosen there too: with the chin kept, the avatar's mouth opening follows the truth's 13 times more
closely (mean |openness error| 0.145 → 0.011 inter-ocular distances, 10 of 10 clips), mouth L1 −0.0112 ± 0.0058 (10
of 10) and whole-frame L1 −0.0007 ± 0.0003 (10 of 10); mouth SSIM is a tie (−0.007 ± 0.108).
"""

from __future__ import annotations

import numpy as np

from talkinghead.landmarks.geometry import LEFT_EYE_OUTER, RIGHT_EYE_OUTER

UPPER_INNER = np.array([61, 62, 63])
LOWER_INNER = np.array([67, 66, 65])
LOWER_OUTER = np.arange(55, 60)
CORNERS = np.array([48, 54, 60, 64])
CORNER_SHARE = 0.3
DEFAULT = True
"""Whether `animate`, the studio and live mode normalize the lips unless told otherwise (``--lip-normalization``)."""


def mouth_gap(points: np.ndarray) -> float:
    """The mean inner-lip gap of landmarks [68, 2] in pixels, measured in the face's upright frame (0 or less:
    the lips touch)."""
    upright, _ = _upright(np.asarray(points, np.float64))
    return float((upright[LOWER_INNER, 1] - upright[UPPER_INNER, 1]).mean())


def close_mouth(points: np.ndarray) -> np.ndarray:
    """Landmarks [68, 2] with the lips closed (module docstring); float32 [68, 2]."""
    points = np.asarray(points, np.float64)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise ValueError(f"close_mouth needs finite landmarks [68, 2], got shape {points.shape}")
    upright, undo = _upright(points)
    gaps = upright[LOWER_INNER, 1] - upright[UPPER_INNER, 1]
    gap = float(gaps.mean())
    if gap <= 0:
        return points.astype(np.float32)
    closed = upright.copy()
    closed[LOWER_INNER, 1] = upright[UPPER_INNER, 1] + np.minimum(gaps, 0.0)  # meet, or stay where they overlap
    closed[LOWER_OUTER, 1] -= gap
    closed[CORNERS, 1] -= CORNER_SHARE * gap
    return undo(closed).astype(np.float32)


def _upright(points: np.ndarray):
    """(points rotated about their mean so the outer eye corners are level, the inverse rotation as a function)."""
    eyes = points[LEFT_EYE_OUTER] - points[RIGHT_EYE_OUTER]
    angle = np.arctan2(eyes[1], eyes[0])
    cos, sin = np.cos(-angle), np.sin(-angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    centre = points.mean(0)

    def undo(upright: np.ndarray) -> np.ndarray:
        return (upright - centre) @ rotation + centre  # row vectors: x -> R x is x @ R.T, its inverse x @ R

    return (points - centre) @ rotation.T + centre, undo


__all__ = ["DEFAULT", "close_mouth", "mouth_gap"]
