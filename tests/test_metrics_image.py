"""SSIM, PSNR and L1 against known values and scikit-image (a test-only dependency)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from talkinghead.metrics.image import l1, psnr, ssim


def _pairs() -> list[tuple[np.ndarray, np.ndarray, float]]:
    rng = np.random.default_rng(6)
    noise = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    face = cv2.resize(skdata.astronaut(), (128, 128), interpolation=cv2.INTER_AREA)
    noisy_face = np.clip(face.astype(int) + rng.normal(0, 12, face.shape), 0, 255).astype(np.uint8)
    blurred_face = cv2.GaussianBlur(face, (7, 7), 2.0)
    gray = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    shifted_gray = np.roll(gray, 3, axis=1)
    float_a = face.astype(np.float64) / 255.0
    float_b = noisy_face.astype(np.float64) / 255.0
    return [
        (noise, np.flipud(noise).copy(), 255.0),
        (face, noisy_face, 255.0),
        (face, blurred_face, 255.0),
        (gray, shifted_gray, 255.0),
        (float_a, float_b, 1.0),
    ]


@pytest.mark.parametrize("index", range(5))
def test_ssim_matches_scikit_image(index: int) -> None:
    image, reference, data_range = _pairs()[index]
    expected = structural_similarity(image, reference, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=data_range, channel_axis=-1 if image.ndim == 3 else None)
    assert ssim(image, reference, data_range=data_range) == pytest.approx(expected, abs=1e-6)
    assert expected < 0.999  # the pairs really differ


def test_ssim_of_an_image_with_itself_is_one() -> None:
    face = cv2.resize(skdata.astronaut(), (96, 96))
    assert ssim(face, face) == pytest.approx(1.0, abs=1e-12)


def test_ssim_rejects_mismatched_or_unknown_ranges() -> None:
    with pytest.raises(ValueError, match="shape"):
        ssim(np.zeros((32, 32, 3), np.uint8), np.zeros((32, 31, 3), np.uint8))
    with pytest.raises(ValueError, match="data_range"):
        ssim(np.zeros((32, 32)), np.zeros((32, 32)))


def test_psnr_known_values() -> None:
    black = np.zeros((16, 16, 3), np.uint8)
    grey = np.full((16, 16, 3), 10, np.uint8)  # MSE = 100
    assert psnr(grey, black) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-12)
    assert psnr(grey, black) == pytest.approx(28.1308036, abs=1e-6)
    assert psnr(black, black) == math.inf
    image, reference, _ = _pairs()[1]
    assert psnr(image, reference) == pytest.approx(peak_signal_noise_ratio(reference, image, data_range=255), abs=1e-9)


def test_l1_known_value() -> None:
    black = np.zeros((8, 8, 3), np.uint8)
    assert l1(np.full_like(black, 51), black) == pytest.approx(0.2, abs=1e-12)
    assert l1(black, black) == 0.0
