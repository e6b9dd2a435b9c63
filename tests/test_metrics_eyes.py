"""The eyes (issue 25, item 7): openness from landmarks, a blink against the video's own eyes, the eye region and
its metrics, and the eyes-closed split (blink targets, open-eyed sources)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkinghead.evaluate import eyes_closed_split_frames
from talkinghead.metrics.eyes import (
    EYE_MARGIN,
    EYES_CLOSED,
    EYES_OPEN,
    eye_box,
    eye_metrics,
    eye_openness,
    relative_eye_openness,
)
from talkinghead.metrics.image import ssim


def face(lid: float = 6.0, width: float = 20.0) -> np.ndarray:
    """68 points with two eyes ``width`` px wide whose lids are ``lid`` px apart (the EAR is lid / width), brows 8 px
    above them; the rest of the face sits below."""
    points = np.zeros((68, 2))
    points[:17] = np.stack([np.linspace(20, 100, 17), 70 + 25 * np.sin(np.linspace(0, np.pi, 17))], 1)
    points[27:36] = (60, 60)
    points[48:68] = (60, 80)
    for corner, brow in ((30.0, 17), (70.0, 22)):
        start = 36 if corner == 30.0 else 42
        x = corner + np.array([0, width / 3, 2 * width / 3, width, 2 * width / 3, width / 3])
        y = 40 + np.array([0, -lid / 2, -lid / 2, 0, lid / 2, lid / 2])
        points[start:start + 6] = np.stack([x, y], 1)
        points[brow:brow + 5] = np.stack([np.linspace(corner - 2, corner + width + 2, 5), np.full(5, 32.0)], 1)
    return points


def test_openness_is_the_eye_aspect_ratio_of_both_eyes():
    assert eye_openness(face(6.0)) == pytest.approx(0.3)
    assert eye_openness(face(1.0)) == pytest.approx(0.05)
    video = np.stack([face(6.0)] * 8 + [face(1.5), face(6.6)])
    relative = relative_eye_openness(video)
    assert relative.shape == (10,) and relative[0] == pytest.approx(1.0)
    assert relative[8] == pytest.approx(0.25) and relative[8] < EYES_CLOSED  # a blink for this person
    assert relative[9] == pytest.approx(1.1) and relative[9] > EYES_OPEN
    with pytest.raises(ValueError, match=r"\[T, 68, 2\]"):
        relative_eye_openness(face())


def test_narrow_eyes_open_are_not_a_blink_against_their_own_median():
    """An absolute threshold would call a narrow-eyed person's open eyes shut; the video's median does not."""
    narrow = np.stack([face(3.0)] * 9 + [face(0.6)])  # EAR 0.15 open, 0.03 in the blink
    relative = relative_eye_openness(narrow)
    assert (relative[:9] > EYES_OPEN).all() and relative[9] < EYES_CLOSED


def test_the_eye_region_is_the_brows_and_eyes_enlarged_and_its_metrics_see_a_squashed_eye():
    points = face(6.0)
    x0, y0, x1, y1 = eye_box(points, (128, 128))
    # brows and eyes: x 28..92, y 32..43; the margin is EYE_MARGIN of 64 and 11 px, then at least 16 px tall
    assert x0 == int(np.floor(28 - EYE_MARGIN * 64)) and x1 == int(np.ceil(92 + EYE_MARGIN * 64))
    assert y0 <= 32 and y1 >= 43 and y1 - y0 >= 16
    rng = np.random.default_rng(0)
    truth = cv2.GaussianBlur(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8), (5, 5), 1.5)
    perfect = eye_metrics(truth, truth, points)
    assert perfect == {"eye_l1": 0.0, "eye_ssim": pytest.approx(1.0), "eye_sharpness": pytest.approx(1.0),
                       "eye_flecks": 0.0}
    squashed = truth.copy()
    squashed[y0:y1, x0:x1] = cv2.resize(cv2.resize(truth[y0:y1, x0:x1], (x1 - x0, 3)), (x1 - x0, y1 - y0))
    bad = eye_metrics(squashed, truth, points)
    assert bad["eye_l1"] > 0.03 and bad["eye_ssim"] < 0.8 and bad["eye_sharpness"] < 0.5
    assert 1.0 - bad["eye_ssim"] > 3 * (1.0 - ssim(squashed, truth))  # the region is a fifth of the frame


def test_the_eyes_closed_split_takes_blinks_as_targets_and_only_open_eyes_as_sources():
    rng = np.random.default_rng(0)
    relative = np.concatenate([rng.uniform(0.95, 1.1, 150), rng.uniform(0.1, 0.45, 6), rng.uniform(0.5, 0.9, 20)])
    targets, sources = eyes_closed_split_frames("id/clip", relative, (1, 8, 32), targets=16, seed=0)
    assert len(targets) == 6 and all(relative[f] < EYES_CLOSED for f in targets)
    assert len(sources[32]) == 32 and all(relative[f] > EYES_OPEN for f in sources[32])
    assert set(sources[1]) <= set(sources[8]) <= set(sources[32])
    assert (targets, sources) == eyes_closed_split_frames("id/clip", relative, (1, 8, 32), targets=16, seed=0)
    assert "no frame with the eyes shut" in eyes_closed_split_frames("id/clip", np.ones(100), (1, 8), targets=16)
    few_open = np.full(40, 0.3)
    few_open[:5] = 1.0
    reason = eyes_closed_split_frames("id/clip", few_open, (1, 8), targets=16)
    assert "5 frames with the eyes open" in reason and "T = 8 needs 8" in reason


def test_white_flecks_count_tooth_white_in_the_eye_where_the_truth_has_none():
    from tests.test_mouth_teeth import LIPS, SKIN, WHITE, frame
    from tests.test_mouth_teeth import face as mouth_face

    from talkinghead.metrics.eyes import EYE_METRICS, eye_flecks, white_pixels

    points = mouth_face(gap=0.0)
    truth = frame(SKIN, points)  # skin, closed lips, noise
    x0, y0, x1, y1 = eye_box(points, truth.shape[:2])
    area = (x1 - x0) * (y1 - y0)
    assert not white_pixels(truth, points)[y0:y1, x0:x1].any()  # skin is not white for its own face
    assert eye_flecks(truth, truth, points) == 0.0
    output = truth.copy()
    output[43:49, 36:50] = WHITE  # a tooth-white fleck over the right eye
    assert eye_flecks(output, truth, points) == pytest.approx(6 * 14 / area)
    assert eye_metrics(output, truth, points)["eye_flecks"] == eye_flecks(output, truth, points)
    shifted = truth.copy()
    shifted[44:50, 37:51] = WHITE  # the truth's own white (a half-open eye), one pixel off: not counted
    assert eye_flecks(output, shifted, points) == 0.0
    red, lit = truth.copy(), np.clip(truth.astype(int) + 12, 0, 255).astype(np.uint8)
    red[43:49, 36:50] = LIPS
    assert eye_flecks(red, truth, points) == 0.0  # lip red is not white
    assert eye_flecks(lit, truth, points) < 0.01  # a frame a little lighter everywhere: measured against itself
    assert "eye_flecks" in EYE_METRICS
    assert eye_flecks(truth, truth, points + 500) is None  # the face outside the frame: no measure
