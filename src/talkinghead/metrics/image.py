"""Full-reference image metrics: SSIM, PSNR and L1 for uint8 RGB images, computed in float64 numpy.

SSIM follows Wang et al. (IEEE TIP 2004) with the settings scikit-image uses for
``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)``:
an 11x11 Gaussian window (sigma 1.5, truncated at 3.5 sigma), K1 = 0.01, K2 = 0.03, reflect padding, the mean of
the SSIM map after cropping (window - 1) / 2 = 5 pixels from every border, and for colour images the mean over the
three channels. scikit-image is only used by the tests to check this implementation; it is not needed here.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_pair(image: np.ndarray, reference: np.ndarray, name: str) -> None:
    if image.shape != reference.shape:
        raise ValueError(f"{name}: image shape {image.shape} differs from reference shape {reference.shape}; "
                         "resize the output to the ground truth's size before measuring")
    if image.ndim not in (2, 3):
        raise ValueError(f"{name}: expected [H, W] or [H, W, C] images, got shape {image.shape}")


def _default_data_range(image: np.ndarray, data_range: float | None, name: str) -> float:
    if data_range is not None:
        return float(data_range)
    if image.dtype == np.uint8:
        return 255.0
    raise ValueError(f"{name}: pass data_range for {image.dtype} images (255 for uint8, 1 or 2 for float images)")


def ssim(image: np.ndarray, reference: np.ndarray, data_range: float | None = None) -> float:
    """Mean structural similarity of ``image`` against ``reference`` (both [H, W] or [H, W, C]; 1 = identical).

    For uint8 inputs ``data_range`` defaults to 255. Colour SSIM is the mean over channels.
    """
    _check_pair(image, reference, "ssim")
    data_range = _default_data_range(image, data_range, "ssim")
    x = image.astype(np.float64)
    y = reference.astype(np.float64)
    # The Gaussian window runs over the two spatial axes only (sigma 0 leaves the channel axis alone).
    sigma = (SSIM_SIGMA, SSIM_SIGMA) + ((0.0,) if x.ndim == 3 else ())
    window_size = 2 * int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5) + 1  # 11
    if min(x.shape[:2]) < window_size:
        raise ValueError(f"ssim: images of {x.shape[:2]} are smaller than the {window_size}x{window_size} window")

    def blur(a: np.ndarray) -> np.ndarray:
        return gaussian_filter(a, sigma=sigma, truncate=SSIM_TRUNCATE, mode="reflect")

    mu_x, mu_y = blur(x), blur(y)
    # Population (not sample) covariances: use_sample_covariance=False.
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov_xy = blur(x * y) - mu_x * mu_y
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    # SSIM(x, y) = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    pad = (window_size - 1) // 2
    cropped = ssim_map[pad:-pad, pad:-pad]
    if cropped.ndim == 3:
        return float(np.mean([cropped[..., c].mean() for c in range(cropped.shape[-1])]))
    return float(cropped.mean())


def psnr(image: np.ndarray, reference: np.ndarray, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB, 10 log10(range^2 / MSE); ``math.inf`` for identical images."""
    _check_pair(image, reference, "psnr")
    data_range = _default_data_range(image, data_range, "psnr")
    mse = float(np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def l1(image: np.ndarray, reference: np.ndarray, data_range: float | None = None) -> float:
    """Mean absolute difference with intensities scaled to [0, 1] (the FOMM-style L1; uint8 divides by 255)."""
    _check_pair(image, reference, "l1")
    data_range = _default_data_range(image, data_range, "l1")
    return float(np.mean(np.abs(image.astype(np.float64) - reference.astype(np.float64))) / data_range)
