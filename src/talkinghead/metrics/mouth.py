"""The mouth: how open it is (from the 68 landmarks) and metrics on the mouth region of a frame.

An opened mouth that the sources show closed is the most visible failure of a warp (a dark or red smear with no
teeth), yet whole-frame metrics barely see it: a perfect mouth moved whole-frame SSIM by 0.002 in our measurement
(issue 24). So the mouth gets its own split (`evaluate --split mouth-open`) and its own region metrics.

Openness: the inner-lip gap, the mean vertical distance between the three upper inner-lip points (iBUG 61, 62, 63)
and the three lower ones below them (67, 66, 65), over the inter-ocular distance (`landmarks.geometry`), so it does
not depend on the face's size in the frame.

Mouth region: the bounding box of the TARGET's outer lip (points 48-59), enlarged by `MOUTH_MARGIN` of its width and
height on every side (to take the lips' edges, the chin crease and the philtrum), clipped to the frame and made at
least `MIN_REGION` pixels on each side (the SSIM window is 11 px). The same box cuts the output and the truth.
"""

from __future__ import annotations

import numpy as np

from talkinghead.landmarks.geometry import inter_ocular_distance

UPPER_INNER_LIP = (61, 62, 63)
LOWER_INNER_LIP = (67, 66, 65)
OUTER_LIP = tuple(range(48, 60))
MOUTH_OPEN = 0.10
"""Inner-lip gap / inter-ocular distance above which a mouth counts as open. Chosen on the landmarks of the training
and validation people (177 clips, 41,815 frames; never the test people's): the gap's median is 0.056, its 25th
percentile 0.023 and 75th 0.109, with a mode of closed lips under 0.02. 0.10 keeps the top quarter: clearly parted
lips, where teeth or the mouth's inside show."""
MOUTH_CLOSED = 0.03
"""Inner-lip gap / inter-ocular distance below which a mouth counts as closed (the lowest ~30 % of those frames:
lips touching or nearly)."""
MOUTH_MARGIN = 0.25
"""The mouth region is the outer-lip box enlarged by this share of its width/height on every side."""
MIN_REGION = 16
"""The smallest side of a mouth region in pixels (the SSIM window is 11)."""
MOUTH_CROP_SIZE = 64
"""Mouth regions are resized to this square for the mouth-crop FD (MobileNetV2 then resizes to 224)."""


def mouth_openness(points: np.ndarray) -> np.ndarray | float:
    """Inner-lip gap over the inter-ocular distance of landmarks [..., 68, 2]: a float for one face, [T] for many."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim < 2 or points.shape[-2:] != (68, 2):
        raise ValueError(f"mouth_openness needs landmarks [..., 68, 2], got {points.shape}")
    upper = points[..., list(UPPER_INNER_LIP), 1]
    lower = points[..., list(LOWER_INNER_LIP), 1]
    gap = np.abs(lower - upper).mean(axis=-1)
    ratio = gap / np.maximum(inter_ocular_distance(points), 1e-6)
    return float(ratio) if np.ndim(ratio) == 0 else ratio


def mouth_box(points: np.ndarray, shape: tuple[int, int], margin: float = MOUTH_MARGIN) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), exclusive ends: the outer-lip box of landmarks [68, 2] enlarged by ``margin`` on every side,
    clipped to a frame of ``shape`` (height, width) and at least `MIN_REGION` px a side where the frame allows."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"mouth_box needs landmarks [68, 2], got {points.shape}")
    lips = points[list(OUTER_LIP)]
    (left, top), (right, bottom) = lips.min(axis=0), lips.max(axis=0)
    height, width = shape
    box = []
    for low, high, limit in ((left, right, width), (top, bottom, height)):
        extra = margin * (high - low)
        start, end = low - extra, high + extra
        if end - start < MIN_REGION:
            centre = (start + end) / 2
            start, end = centre - MIN_REGION / 2, centre + MIN_REGION / 2
        start, end = int(np.floor(max(start, 0))), int(np.ceil(min(end, limit)))
        if end - start < min(MIN_REGION, limit):  # pushed against the frame's border: grow inwards
            start, end = (0, min(MIN_REGION, limit)) if start == 0 else (max(limit - MIN_REGION, 0), limit)
        box.append((start, end))
    (x0, x1), (y0, y1) = box
    return x0, y0, x1, y1


def crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The region ``box`` (x0, y0, x1, y1) of an image."""
    x0, y0, x1, y1 = box
    return np.asarray(image)[y0:y1, x0:x1]


def mouth_metrics(output: np.ndarray, truth: np.ndarray, truth_landmarks: np.ndarray) -> dict[str, float | None]:
    """``mouth_l1``, ``mouth_ssim``, ``mouth_sharpness`` of an output frame on the truth's mouth region
    (uint8 RGB frames of one size, the truth's landmarks [68, 2] in its pixels)."""
    from talkinghead.metrics.image import l1, ssim
    from talkinghead.metrics.realism import relative_sharpness

    box = mouth_box(truth_landmarks, truth.shape[:2])
    mine, theirs = crop(output, box), crop(truth, box)
    return {"mouth_l1": l1(mine, theirs), "mouth_ssim": ssim(mine, theirs),
            "mouth_sharpness": relative_sharpness(np.ascontiguousarray(mine), np.ascontiguousarray(theirs))}


def mouth_crop(image: np.ndarray, truth_landmarks: np.ndarray, size: int = MOUTH_CROP_SIZE) -> np.ndarray:
    """The truth's mouth region of ``image``, resized to ``size`` x ``size`` (for the mouth-crop FD)."""
    import cv2

    region = crop(image, mouth_box(truth_landmarks, np.asarray(image).shape[:2]))
    return cv2.resize(np.ascontiguousarray(region), (size, size), interpolation=cv2.INTER_AREA
                      if min(region.shape[:2]) > size else cv2.INTER_CUBIC)


__all__ = ["MOUTH_CLOSED", "MOUTH_MARGIN", "MOUTH_OPEN", "crop", "mouth_box", "mouth_crop", "mouth_metrics",
           "mouth_openness"]
