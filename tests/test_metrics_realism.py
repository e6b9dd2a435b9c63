"""Offline realism figures (issue 18): FD-MobileNetV2 on known distributions and real features, relative sharpness."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkinghead.metrics.realism import (
    FD_LABEL,
    MobileNetV2Embedding,
    frechet_distance_mobilenet,
    laplacian_variance,
    relative_sharpness,
)


def textured_image(seed: int = 0, size: int = 96) -> np.ndarray:
    """A sharp uint8 RGB test picture: random blocks and a few edges (plenty of high frequencies)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
    image = cv2.resize(blocks, (size, size), interpolation=cv2.INTER_NEAREST)
    cv2.circle(image, (size // 2, size // 2), size // 4, (255, 255, 255), 2)
    return image


def test_label_says_it_is_not_fid():
    assert FD_LABEL == "FD-MobileNetV2 (not comparable with published FID)"


def test_frechet_distance_of_gaussian_samples_matches_the_closed_form():
    # N(mu1, diag(s1²)) vs N(mu2, diag(s2²)): d² = |mu1 - mu2|² + Σ (s1 - s2)²
    rng = np.random.default_rng(0)
    mu1, mu2 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 1.0, 0.0, 0.5])
    s1, s2 = np.array([1.0, 2.0, 0.5, 1.0]), np.array([1.0, 1.0, 1.5, 3.0])
    a = mu1 + s1 * rng.standard_normal((40000, 4))
    b = mu2 + s2 * rng.standard_normal((40000, 4))
    expected = float(((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum())  # 5 + 6 = 11
    assert expected == pytest.approx(11.0)
    assert frechet_distance_mobilenet(a, b) == pytest.approx(expected, rel=0.03)
    assert frechet_distance_mobilenet(a, a) == pytest.approx(0.0, abs=1e-8)


def test_mobilenet_features_give_zero_for_identical_sets_and_more_for_blur():
    embedding = MobileNetV2Embedding()
    images = [textured_image(seed) for seed in range(6)]
    features = embedding.features(images)
    assert features.shape == (6, 1280) and np.all(np.isfinite(features))
    again = embedding.features(images)
    assert frechet_distance_mobilenet(features, again) == pytest.approx(0.0, abs=1e-3)  # round-off (rank-deficient)
    blurred = embedding.features([cv2.GaussianBlur(i, (0, 0), 3.0) for i in images])
    assert frechet_distance_mobilenet(features, blurred) > 1.0
    with pytest.raises(ValueError, match="uint8 RGB"):
        embedding.features([np.zeros((8, 8), np.float32)])


def test_blur_scores_below_one_and_lower_with_more_blur():
    image = textured_image()
    assert relative_sharpness(image, image) == pytest.approx(1.0)
    scores = [relative_sharpness(cv2.GaussianBlur(image, (0, 0), sigma), image) for sigma in (0.5, 1.0, 2.0, 4.0)]
    assert all(s < 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)
    assert scores[-1] < 0.1


def test_noise_scores_above_one_and_a_flat_reference_has_no_score():
    image = textured_image()
    noise = np.random.default_rng(1).normal(0, 20, image.shape)
    noisy = np.clip(image + noise, 0, 255).astype(np.uint8)
    assert relative_sharpness(noisy, image) > 1.0
    flat = np.full_like(image, 128)
    assert laplacian_variance(flat) == 0.0 and relative_sharpness(image, flat) is None
    with pytest.raises(ValueError, match="differ"):
        relative_sharpness(image[:10], image)
