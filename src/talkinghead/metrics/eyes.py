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

White flecks in the eye (``eye_flecks``, stop 35): L1, SSIM and sharpness reward a smooth lid at the right
brightness, and cannot see a few tooth-white flecks painted into a shut eye (stop 34's lid prior: the synthesis
branch's mouth colours, seen on the pictures, scored +3 by the rule). This counts them: the share of the eye region's
pixels that are white in the output (lighter than `FLECK_LIGHTNESS` of the face's pixels and less coloured than
`FLECK_CHROMA` x its median chroma, each frame against its own face on the truth's landmarks) where the truth, grown
by one pixel, has none (an eye's white in a half blink, a highlight on glasses). Chosen on stop 34's validation
frames (eyes-closed split, 16 targets of 10 videos, T = 1 and 8): with the lid prior the share was 0.1-1 % on 7 of
10 videos, where the flecks showed, against at most 0.06 % for the mesh warp and the model without it. A lip-red
test (chroma over the lips' and hue nearer the lips' than the skin's) was tried beside it and dropped: it separated
nothing, real lips and skin being too close in colour at 128 px.
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
EYE_METRICS = ("eye_l1", "eye_ssim", "eye_sharpness", "eye_flecks")
FLECK_LIGHTNESS = 90.0
"""A white pixel is at least as light (Lab L) as this percentile of the face's pixels."""
FLECK_CHROMA = 0.6
"""A white pixel's Lab chroma is at most this times the face's median chroma."""


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


def white_pixels(image: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """bool [height, width]: the pixels of a uint8 RGB frame that are white for its face (landmarks [68, 2]): Lab
    lightness at least the face's `FLECK_LIGHTNESS` percentile and chroma at most `FLECK_CHROMA` x its median. None
    when the face is outside the frame."""
    import cv2

    from talkinghead.metrics.mouth import face_mask

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"white_pixels needs a uint8 RGB image, got {image.dtype} {image.shape}")
    face = face_mask(points, image.shape)
    if not face.any():
        return None
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float64)
    lightness, chroma = lab[..., 0], np.hypot(lab[..., 1] - 128.0, lab[..., 2] - 128.0)
    return ((lightness >= np.percentile(lightness[face], FLECK_LIGHTNESS))
            & (chroma <= FLECK_CHROMA * np.median(chroma[face])))


def eye_flecks(output: np.ndarray, truth: np.ndarray, truth_landmarks: np.ndarray) -> float | None:
    """The share of the truth's eye region (`eye_box`) that is white in the output and not in the truth grown by one
    pixel (module docstring; uint8 RGB frames of one size, the truth's landmarks [68, 2]); None when the face is
    outside the frame."""
    import cv2

    mine, theirs = white_pixels(output, truth_landmarks), white_pixels(truth, truth_landmarks)
    if mine is None or theirs is None:
        return None
    theirs = cv2.dilate(theirs.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    x0, y0, x1, y1 = eye_box(truth_landmarks, truth.shape[:2])
    return float((mine & ~theirs)[y0:y1, x0:x1].mean())


def eye_metrics(output: np.ndarray, truth: np.ndarray, truth_landmarks: np.ndarray) -> dict[str, float | None]:
    """``eye_l1``, ``eye_ssim``, ``eye_sharpness`` and ``eye_flecks`` of an output frame on the truth's eye
    region (uint8 RGB frames of one size, the truth's landmarks [68, 2] in its pixels)."""
    from talkinghead.metrics.image import l1, ssim
    from talkinghead.metrics.realism import relative_sharpness

    box = eye_box(truth_landmarks, truth.shape[:2])
    mine, theirs = crop(output, box), crop(truth, box)
    return {"eye_l1": l1(mine, theirs), "eye_ssim": ssim(mine, theirs),
            "eye_sharpness": relative_sharpness(np.ascontiguousarray(mine), np.ascontiguousarray(theirs)),
            "eye_flecks": eye_flecks(output, truth, truth_landmarks)}


__all__ = ["EYES_CLOSED", "EYES_OPEN", "EYE_MARGIN", "EYE_METRICS", "FLECK_CHROMA", "FLECK_LIGHTNESS", "eye_box",
           "eye_flecks", "eye_metrics", "eye_openness", "relative_eye_openness", "white_pixels"]
