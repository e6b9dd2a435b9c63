"""The eyes: how open they are (from the 68 landmarks) and metrics on the eye region of a frame (issue 25, item 7).

A blink that the sources do not show is the eyes' version of the open mouth: the mesh warp maps the source's open
eye onto the driver's thin lid line, squashing iris and white into a dark slit instead of drawing the lid over
them. Whole-frame metrics cannot see a few frames of a few pixels, so the eyes get their own split
(`evaluate --split eyes-closed`: targets with the eyes shut, sources with them open) and these region metrics.

Openness: the eye aspect ratio (Soukupová and Čech's EAR) of each eye, (|p2 − p6| + |p3 − p5|) / (2 |p1 − p4|) on
iBUG points 36-41 and 42-47, averaged over both eyes. People's eyes differ in shape (the training and validation
people's median EAR is 0.30, its 10th percentile 0.19), so a frame counts as shut or open against its own video's
median (`relative_eye_openness`), not against one absolute number.

Eye region: the bounding box of the TARGET's brows and eyes (points 17-26 and 36-47), enlarged by `EYE_MARGIN` of its
width and height on every side (lids, lashes and the top of the cheek), clipped to the frame and at least
`metrics.mouth.MIN_REGION` pixels a side (`metrics.mouth.region_box`). The same box cuts the output and the truth.
"""

from __future__ import annotations

import numpy as np

from talkinghead.metrics.mouth import crop, region_box

RIGHT_EYE = tuple(range(36, 42))
LEFT_EYE = tuple(range(42, 48))
BROWS = tuple(range(17, 27))
EYES_CLOSED = 0.5
"""Eye openness / the video's median below which the eyes count as shut. Chosen on the training and validation
people's landmarks (177 clips, 41,815 frames; never the test people's): the ratio's 3rd percentile is 0.49 and its
10th 0.72, and 97 of the 177 clips have at least one frame under 0.5 (a blink lasts a few frames)."""
EYES_OPEN = 0.9
"""Eye openness / the video's median above which the eyes count as open (77 % of those frames; 3.2 % are under
`EYES_CLOSED`)."""
EYE_MARGIN = 0.15
"""The eye region is the brows-and-eyes box enlarged by this share of its width/height on every side."""
EYE_METRICS = ("eye_l1", "eye_ssim", "eye_sharpness")


def _checked(points: np.ndarray, what: str) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim < 2 or points.shape[-2:] != (68, 2):
        raise ValueError(f"{what} needs landmarks [..., 68, 2], got {points.shape}")
    return points


def eye_openness(points: np.ndarray) -> np.ndarray | float:
    """The eye aspect ratio averaged over both eyes of landmarks [..., 68, 2]: a float for one face, [T] for many."""
    points = _checked(points, "eye_openness")
    ratios = []
    for eye in (RIGHT_EYE, LEFT_EYE):
        p = points[..., list(eye), :]
        vertical = (np.linalg.norm(p[..., 1, :] - p[..., 5, :], axis=-1)
                    + np.linalg.norm(p[..., 2, :] - p[..., 4, :], axis=-1)) / 2
        ratios.append(vertical / np.maximum(np.linalg.norm(p[..., 0, :] - p[..., 3, :], axis=-1), 1e-6))
    ratio = (ratios[0] + ratios[1]) / 2
    return float(ratio) if np.ndim(ratio) == 0 else ratio


def relative_eye_openness(points: np.ndarray) -> np.ndarray:
    """`eye_openness` of a video's landmarks [T, 68, 2] over its median: 1 is this person's usual eye, under
    `EYES_CLOSED` a blink."""
    points = _checked(points, "relative_eye_openness")
    if points.ndim != 3:
        raise ValueError(f"relative_eye_openness needs a video's landmarks [T, 68, 2], got {points.shape}")
    openness = np.asarray(eye_openness(points), dtype=np.float64).reshape(-1)
    median = float(np.median(openness))
    return openness / max(median, 1e-6)


def eye_box(points: np.ndarray, shape: tuple[int, int], margin: float = EYE_MARGIN) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), exclusive ends: the brows-and-eyes box of landmarks [68, 2] enlarged by ``margin`` on every
    side, clipped to a frame of ``shape`` (height, width) and at least `MIN_REGION` px a side where the frame
    allows."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"eye_box needs one face's landmarks [68, 2], got {points.shape}")
    return region_box(points[list(BROWS) + list(RIGHT_EYE) + list(LEFT_EYE)], shape, margin)


def eye_metrics(output: np.ndarray, truth: np.ndarray, truth_landmarks: np.ndarray) -> dict[str, float | None]:
    """``eye_l1``, ``eye_ssim``, ``eye_sharpness`` of an output frame on the truth's eye region (uint8 RGB frames of
    one size, the truth's landmarks [68, 2] in its pixels)."""
    from talkinghead.metrics.image import l1, ssim
    from talkinghead.metrics.realism import relative_sharpness

    box = eye_box(truth_landmarks, truth.shape[:2])
    mine, theirs = crop(output, box), crop(truth, box)
    return {"eye_l1": l1(mine, theirs), "eye_ssim": ssim(mine, theirs),
            "eye_sharpness": relative_sharpness(np.ascontiguousarray(mine), np.ascontiguousarray(theirs))}


__all__ = ["EYES_CLOSED", "EYES_OPEN", "EYE_MARGIN", "EYE_METRICS", "eye_box", "eye_metrics", "eye_openness",
           "relative_eye_openness"]
