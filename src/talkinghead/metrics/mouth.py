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

Teeth (issue 25): a warp of closed-mouth sources opens the lips onto a dark or red hole; the region metrics say
that the mouth differs, not whether teeth are there. `teeth_share` of a frame, always on the TRUTH's landmarks:
- inner mouth: the inner-lip polygon (points 60-67) filled at the frame's size (cv2.fillPoly) and eroded by one
  pixel per 128 px of frame side (3x3 cross). The polygon's rim is the lips' inner edge: eroding it took the
  disagreements with the eye on the tuning frames (below) from 20 of 157 to 11 of 148 and the false teeth on
  closed-mouth copies from 7 of 176 to 3 of 164. It also empties the one-pixel slit of a closed mouth: under
  `TEETH_MIN_PIXELS` left (6 at 128 px, scaled with the area) there is no measure (None: closed or barely parted);
- lips: the outer-lip polygon (48-59) less the inner one grown by the same width; face: the convex hull of points
  0-26 (jaw line and brows: cheeks, nose, chin and brow, almost all skin; a landmark box would add the background
  and hair beside the jaw, which move with the scene, not with the face's lighting);
- a pixel is tooth-like when, in CIE Lab (OpenCV's 8-bit Lab; chroma = hypot(a, b)), its lightness is at least
  `TEETH_FACE_LIGHTNESS` (0.8) x the face's median lightness and `TEETH_LIP_LIGHTNESS` (1.05) x the lips' median,
  and its chroma at most `TEETH_LIP_CHROMA` (0.8) x the lips' median chroma: not dark for this face, and lighter
  and less coloured than the lips around it (tongue and lips are redder, the mouth's inside darker). Every
  reference is the same frame's own, so lighting, colour casts and an output's own tone cancel;
- a frame shows teeth when tooth-like / inner-mouth pixels >= `TEETH_SHARE` (0.1).

Why the lips and not only the face: the issue's outline compares the chroma with the FACE's median. With L >= 0.8 x
and chroma <= 1.0 x the face's medians and a share of 0.05 it agrees with the eye on real mouths a little more often
(139 of 148 tuning frames, 67 of 73 check frames), but skin at the face's median chroma passes by construction and
on pale or magenta-cast faces (metricaltracker-wojtek, retalking-4) teeth have the skin's colour: it called 38 of 164
closed-mouth copies "teeth" (22 of 87 in the check sample). A closed-mouth copy is each labelled frame's polygon
laid on the nearest-pose closed-mouth frame of its clip: what copy-source, or any output that does not open the
mouth, shows there. Against the lips: 3 of 164 (2 of 87). The face's lightness floor changed no decision on these
frames; it stays as the outline's "bright for this face" (a pale patch in a dark mouth is no tooth). Not told apart:
skin-coloured fill inside an open outline of red lips passes as lighter and less coloured than the lips (a
synthetic frame of tests/test_mouth_teeth.py); no output on the validation contact sheets below looks like that.

`teeth_metrics` (per target; the report pools them over frames, `metrics.report.FRAME_SHARES`): ``teeth_shown`` =
1/0 whether the output shows teeth, on targets whose truth does (None elsewhere); ``teeth_invented`` the same on
targets whose truth's mouth is measurable and shows none. The output is measured on the truth's polygon (it
reenacts those landmarks), against its own face and lips.

How the numbers were chosen (validation people only: the 11 clips of the prepared validation set at 128 px; never
the test people). Three random samples of 88 frames (8 per clip, inner-lip gap over 0.06, 0.03 and 0.05 inter-ocular
distances); each mouth crop labelled by eye "teeth", "none" or "unsure" before it was measured. Tuned on the first
two (105 teeth, 52 none, 19 unsure): grids over the erosion (none, 1 px, the polygon shrunk to 0.9 or 0.8 of its
size) and the minimum pixels (6-12; the 11 frames of 6-7 px agree on 9, so 6 stays), then the face lightness
factor {0.7..1.0}, lip lightness {0.9..1.4}, lip chroma {0.6..1.0} and share {0.05..0.15}, scored by the agreement
with the eye and the false teeth on the copies. The values above agree on 137 of the 148 measured tuning frames
(72/79 and 65/69) with 3 false teeth in 164 copies. A share of 0.05 agreed on 142 but made 5 false teeth in the
copies and lets a one- or two-pixel speck decide a blurred output: 0.1 was kept. Check on the third sample, kept
apart until then: 63 of the 73 measured frames agree (teeth found on 42 of 52, none on 21 of 21), one mouth
unmeasured, 14 unsure left out; 2 false teeth in 87 copies (both retalking-4). The 10 misses are faint or small
teeth: 5 of presence-glasses-man (filmed from afar, a tooth is 1-3 px), 2 of amy-klobuchar, one each of
metricaltracker-wojtek, mimictalk-german-anchor and retalking-4. Generated frames (the contact sheets of the
validation evaluations at T = 8, truth and 6 methods per row): on the mouth-open split's 65 targets every
method's mouth is a dark or red hole and all 390 outputs were measured "no teeth", as the eye sees them; on the
random split's 80 targets (57 measurable) the outputs' decisions agree with the eye on all but 6 rows, each a faint
mouth or a single tooth at a share of 0.09-0.14, or a truth under the magenta cast.
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
INNER_LIP = tuple(range(60, 68))
"""The inner-lip polygon of the 68 points (0-based)."""
FACE_SKIN = tuple(range(27))
"""Jaw line and brows: their convex hull is the face whose median lightness a tooth must reach a share of."""
TEETH_FACE_LIGHTNESS = 0.8
"""A tooth-like pixel's Lab lightness is at least this times the face's median lightness."""
TEETH_LIP_LIGHTNESS = 1.05
"""A tooth-like pixel's Lab lightness is also at least this times the lips' median lightness."""
TEETH_LIP_CHROMA = 0.8
"""A tooth-like pixel's Lab chroma is at most this times the lips' median chroma."""
TEETH_SHARE = 0.1
"""A frame shows teeth when at least this share of its inner-mouth pixels is tooth-like."""
TEETH_MIN_PIXELS = 6
"""Fewer inner-mouth pixels (after the erosion) than this at `TEETH_REFERENCE_SIDE` (scaled with the frame's area):
the mouth is closed or barely parted, no measure."""
TEETH_REFERENCE_SIDE = 128
"""The frame side (px) the teeth numbers were chosen at: the erosion is 1 px and the minimum 6 px there."""
TEETH_METRICS = ("teeth_shown", "teeth_invented")
TEETH_NOTE = (f"Teeth (`metrics.mouth`): a frame shows teeth when >= {TEETH_SHARE:g} of the truth's inner-lip "
              "polygon is tooth-like (lighter than the face's and the lips' medians, less coloured than the lips). "
              "Teeth shown: of the targets whose truth shows teeth, the share of outputs that show teeth (issue 25's "
              "target >= 0.5); Teeth invented: of the targets whose truth's mouth is open enough to measure and shows "
              "none, the share of outputs that show teeth (target <= 0.2); n: those targets, over all videos.")
"""The report's footer line on the teeth columns."""


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
    return region_box(points[list(OUTER_LIP)], shape, margin)


def region_box(points: np.ndarray, shape: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), exclusive ends: the bounding box of points [N, 2] enlarged by ``margin`` of its width and
    height on every side, clipped to a frame of ``shape`` (height, width) and at least `MIN_REGION` px a side where
    the frame allows (the mouth's and the eyes' regions)."""
    (left, top), (right, bottom) = points.min(axis=0), points.max(axis=0)
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
    """``mouth_l1``, ``mouth_ssim``, ``mouth_sharpness`` of an output frame on the truth's mouth region, and
    `teeth_metrics` (uint8 RGB frames of one size, the truth's landmarks [68, 2] in its pixels)."""
    from talkinghead.metrics.image import l1, ssim
    from talkinghead.metrics.realism import relative_sharpness

    box = mouth_box(truth_landmarks, truth.shape[:2])
    mine, theirs = crop(output, box), crop(truth, box)
    return {"mouth_l1": l1(mine, theirs), "mouth_ssim": ssim(mine, theirs),
            "mouth_sharpness": relative_sharpness(np.ascontiguousarray(mine), np.ascontiguousarray(theirs)),
            **teeth_metrics(output, truth, truth_landmarks)}


def mouth_crop(image: np.ndarray, truth_landmarks: np.ndarray, size: int = MOUTH_CROP_SIZE) -> np.ndarray:
    """The truth's mouth region of ``image``, resized to ``size`` x ``size`` (for the mouth-crop FD)."""
    import cv2

    region = crop(image, mouth_box(truth_landmarks, np.asarray(image).shape[:2]))
    return cv2.resize(np.ascontiguousarray(region), (size, size), interpolation=cv2.INTER_AREA
                      if min(region.shape[:2]) > size else cv2.INTER_CUBIC)


def _points(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"the teeth measure needs landmarks [68, 2], got {points.shape}")
    return points


def _scale(shape: tuple[int, ...]) -> float:
    return min(shape[:2]) / TEETH_REFERENCE_SIDE


def _rim(mask: np.ndarray, shape: tuple[int, ...], grow: bool) -> np.ndarray:
    """``mask`` eroded (or dilated when ``grow``) by one pixel per `TEETH_REFERENCE_SIDE` px (at least one)."""
    import cv2

    step = cv2.erode if not grow else cv2.dilate
    return step(mask, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)), iterations=max(1, round(_scale(shape))))


def _polygon(points: np.ndarray, indices: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """uint8 [height, width]: 1 inside the polygon of ``points[indices]`` (cv2.fillPoly at whole pixels)."""
    import cv2

    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(_points(points)[list(indices)]).astype(np.int32)], 1)
    return mask


def inner_mouth_mask(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """bool [height, width]: the inner-lip polygon of landmarks [68, 2] filled in a frame of ``shape`` and eroded by
    one pixel per `TEETH_REFERENCE_SIDE` px of its shorter side (at least one; 3x3 cross)."""
    return _rim(_polygon(points, INNER_LIP, shape), shape, grow=False).astype(bool)


def lips_mask(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """bool [height, width]: the lips, the outer-lip polygon (points 48-59) less the inner one grown by the
    erosion's width, in a frame of ``shape``."""
    inner = _rim(_polygon(points, INNER_LIP, shape), shape, grow=True)
    return _polygon(points, OUTER_LIP, shape).astype(bool) & ~inner.astype(bool)


def face_mask(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """bool [height, width]: the convex hull of the jaw line and brows (`FACE_SKIN`) in a frame of ``shape``."""
    import cv2

    hull = cv2.convexHull(np.round(_points(points)[list(FACE_SKIN)]).astype(np.int32))
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(bool)


def min_mouth_pixels(shape: tuple[int, ...]) -> int:
    """The fewest inner-mouth pixels a frame of ``shape`` needs for a teeth measure (`TEETH_MIN_PIXELS` scaled)."""
    return max(2, round(TEETH_MIN_PIXELS * _scale(shape) ** 2))


def teeth_share(image: np.ndarray, points: np.ndarray) -> float | None:
    """The share of the inner mouth's pixels that are tooth-like (module docstring) in a uint8 RGB frame with
    landmarks [68, 2] in its pixels; None when the mouth is closed (fewer than `min_mouth_pixels`) or the face or
    lips are outside the frame."""
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"teeth_share needs a uint8 RGB image, got {image.dtype} {image.shape}")
    mouth = inner_mouth_mask(points, image.shape)
    face, lips = face_mask(points, image.shape), lips_mask(points, image.shape)
    if mouth.sum() < min_mouth_pixels(image.shape) or not face.any() or not lips.any():
        return None
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float64)
    lightness, chroma = lab[..., 0], np.hypot(lab[..., 1] - 128.0, lab[..., 2] - 128.0)
    light = lightness[mouth]
    tooth = ((light >= TEETH_FACE_LIGHTNESS * np.median(lightness[face]))
             & (light >= TEETH_LIP_LIGHTNESS * np.median(lightness[lips]))
             & (chroma[mouth] <= TEETH_LIP_CHROMA * np.median(chroma[lips])))
    return float(tooth.mean())


def shows_teeth(share: float | None) -> bool | None:
    """Whether a frame with this `teeth_share` shows teeth (None: not measured)."""
    return None if share is None else bool(share >= TEETH_SHARE)


def teeth_metrics(output: np.ndarray, truth: np.ndarray, truth_landmarks: np.ndarray) -> dict[str, float | None]:
    """``teeth_shown``: 1.0/0.0 whether the output shows teeth where the truth does, else None; ``teeth_invented``:
    the same where the truth's mouth is measurable and shows none. Both frames are measured on the truth's
    landmarks, each against its own face and lips; a closed truth mouth gives None for both."""
    truth_teeth = shows_teeth(teeth_share(truth, truth_landmarks))
    if truth_teeth is None:
        return dict.fromkeys(TEETH_METRICS)
    shown = shows_teeth(teeth_share(output, truth_landmarks))
    value = None if shown is None else float(shown)
    return {"teeth_shown": value if truth_teeth else None, "teeth_invented": None if truth_teeth else value}


__all__ = ["MOUTH_CLOSED", "MOUTH_MARGIN", "MOUTH_OPEN", "TEETH_FACE_LIGHTNESS", "TEETH_LIP_CHROMA",
           "TEETH_LIP_LIGHTNESS", "TEETH_METRICS", "TEETH_MIN_PIXELS", "TEETH_NOTE", "TEETH_SHARE", "crop", "face_mask",
           "inner_mouth_mask", "lips_mask", "mouth_box", "mouth_crop", "mouth_metrics", "mouth_openness", "region_box",
           "shows_teeth", "teeth_metrics", "teeth_share"]
