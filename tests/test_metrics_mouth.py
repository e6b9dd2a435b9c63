"""The mouth (issue 24): openness from landmarks, the mouth region, and metrics that see a smeared mouth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkinghead.metrics.image import ssim
from talkinghead.metrics.mouth import (
    MIN_REGION,
    MOUTH_MARGIN,
    mouth_box,
    mouth_crop,
    mouth_metrics,
    mouth_openness,
)


def face(gap: float = 0.0, scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """68 points of a schematic frontal face, eyes' outer corners 40 px apart at scale 1; ``gap`` opens the inner
    lips by that many pixels (at scale 1)."""
    points = np.zeros((68, 2))
    points[:17] = np.stack([np.linspace(20, 80, 17), 60 + 25 * np.sin(np.linspace(0, np.pi, 17))], 1)
    points[36], points[45] = (30, 40), (70, 40)
    points[37:42] = (35, 40)
    points[42:45] = (65, 40)
    points[27:36] = (50, 50)
    outer = [(40, 70), (44, 68), (47, 67), (50, 68), (53, 67), (56, 68), (60, 70),
             (56, 74), (53, 75), (50, 76), (47, 75), (44, 74)]
    points[48:60] = outer
    points[60], points[64] = (42, 70), (58, 70)
    points[61:64] = [(46, 70 - gap / 2), (50, 70 - gap / 2), (54, 70 - gap / 2)]
    points[65:68] = [(54, 70 + gap / 2), (50, 70 + gap / 2), (46, 70 + gap / 2)]
    return points * scale + np.asarray(shift)


def test_openness_is_the_inner_lip_gap_over_the_inter_ocular_distance_at_any_size():
    assert mouth_openness(face(0.0)) == pytest.approx(0.0)
    assert mouth_openness(face(8.0)) == pytest.approx(8.0 / 40.0)
    assert mouth_openness(face(8.0, scale=3.0, shift=(100, 50))) == pytest.approx(0.2)  # size-free
    both = mouth_openness(np.stack([face(0.0), face(4.0)]))
    assert both.shape == (2,) and both[1] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="68, 2"):
        mouth_openness(np.zeros((5, 2)))


def test_the_mouth_box_is_the_outer_lips_enlarged_by_the_margin_and_clipped():
    x0, y0, x1, y1 = mouth_box(face(), (128, 128))
    # Outer lips: x 40..60, y 67..76; the margin is 0.25 of 20 = 5 px and of 9 = 2.25 px, then at least 16 px tall.
    assert (x0, x1) == (int(np.floor(40 - 5 * MOUTH_MARGIN / 0.25)), int(np.ceil(60 + 5 * MOUTH_MARGIN / 0.25)))
    assert y1 - y0 >= MIN_REGION and y0 <= 67 and y1 >= 76
    edge = mouth_box(face(shift=(-45, 50)), (128, 128))  # lips cut by the left border and below the frame
    assert edge[0] == 0 and edge[2] - edge[0] >= MIN_REGION and edge[3] == 128 and edge[3] - edge[1] >= MIN_REGION


def test_a_smeared_mouth_is_seen_by_the_mouth_metrics_far_more_than_by_whole_frame_ssim():
    rng = np.random.default_rng(0)
    truth = cv2.GaussianBlur(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8), (5, 5), 1.5)
    points = face(8.0)
    smeared = truth.copy()
    x0, y0, x1, y1 = mouth_box(points, truth.shape[:2])
    smeared[y0:y1, x0:x1] = truth[y0:y1, x0:x1].mean(axis=(0, 1)).astype(np.uint8)  # a flat patch, no teeth
    perfect = mouth_metrics(truth, truth, points)
    assert perfect["mouth_l1"] == 0.0 and perfect["mouth_ssim"] == pytest.approx(1.0)
    assert perfect["mouth_sharpness"] == pytest.approx(1.0)
    bad = mouth_metrics(smeared, truth, points)
    whole_drop = 1.0 - ssim(smeared, truth)
    assert 1.0 - bad["mouth_ssim"] > 10 * whole_drop  # the region is ~5% of the frame
    assert bad["mouth_sharpness"] < 0.05 and bad["mouth_l1"] > 0.05


def test_the_mouth_crop_is_the_region_resized_for_the_feature_network():
    image = np.zeros((128, 128, 3), np.uint8)
    points = face(8.0)
    x0, y0, x1, y1 = mouth_box(points, image.shape[:2])
    image[y0:y1, x0:x1] = 200
    crop = mouth_crop(image, points, size=64)
    assert crop.shape == (64, 64, 3) and crop.min() == 200
