"""Temporal smoothing of landmark tracks: the One-Euro filter (Casiry, Roussel & Vogel, CHI 2012).

A low-pass filter whose cutoff rises with speed: slow motion (jitter) is smoothed hard, fast motion passes
with little lag. Per sample: ``alpha(fc) = 1 / (1 + fps / (2 pi fc))``; the derivative is low-passed at
``d_cutoff``; the cutoff is ``fc = min_cutoff + beta * |dx/dt|``; ``x̂_t = alpha x_t + (1 - alpha) x̂_{t-1}``.

For driving videos (inference) only: training data keep raw landmarks (off by default in dataset building).
`smooth_track` measures speed in face sizes per second (the track's median inter-ocular distance), so the
same ``beta`` works at any resolution.
"""

from __future__ import annotations

import math

import numpy as np

from talkinghead.landmarks.geometry import inter_ocular_distance

MIN_CUTOFF = 1.0
"""Hz: smoothing of driver landmarks at rest (`smooth_track` and `LandmarkSmoother`)."""
BETA = 0.5
"""Cutoff rise per inter-ocular distance per second of landmark speed."""


class OneEuroFilter:
    """One-Euro filter over arrays of any fixed shape (e.g. ``[68, 2]`` landmarks), one sample per call.

    ``min_cutoff`` (Hz): smoothing at rest (lower = smoother); ``beta``: how fast the cutoff rises with
    speed (higher = less lag); ``d_cutoff`` (Hz): smoothing of the speed estimate.
    """

    def __init__(self, fps: float, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        if fps <= 0 or min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError(f"OneEuroFilter needs fps, min_cutoff, d_cutoff > 0 and beta >= 0, "
                             f"got fps={fps}, min_cutoff={min_cutoff}, beta={beta}, d_cutoff={d_cutoff}")
        self.fps = float(fps)
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        """Forget the past (e.g. after a cut or a lost face)."""
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        return 1.0 / (1.0 + self.fps / (2.0 * math.pi * cutoff))

    def __call__(self, sample: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Filter one sample; ``scale`` divides speeds before ``beta`` is applied (e.g. the face size)."""
        sample = np.asarray(sample, dtype=np.float64)
        if self._value is None:
            self._value = sample.copy()
            self._speed = np.zeros_like(sample)
            return sample.copy()
        speed = (sample - self._value) * self.fps
        self._speed = self._speed + self._alpha(self.d_cutoff) * (speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed) / scale
        self._value = self._value + self._alpha(cutoff) * (sample - self._value)
        return self._value.copy()


def smooth_track(points: np.ndarray, fps: float, min_cutoff: float = MIN_CUTOFF, beta: float = BETA,
                 d_cutoff: float = 1.0) -> np.ndarray:
    """One-Euro smoothing of a landmark track ``[T, 68, 2]`` -> float32 ``[T, 68, 2]``.

    Speeds are measured in inter-ocular distances per second (median over the track), so ``beta`` does not
    depend on the resolution.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (68, 2):
        raise ValueError(f"smooth_track needs a [T, 68, 2] track, got {points.shape}")
    scale = float(np.median(inter_ocular_distance(points))) or 1.0
    filter_ = OneEuroFilter(fps, min_cutoff=min_cutoff, beta=beta, d_cutoff=d_cutoff)
    return np.stack([filter_(frame, scale=scale) for frame in points]).astype(np.float32)


class LandmarkSmoother:
    """One-Euro smoothing of a driver's landmarks one frame at a time (animation and live), with the settings of
    `smooth_track`; speeds are measured in the frame's own inter-ocular distance (at least 1 px).

    ``smoother(points)`` assumes the nominal ``fps``; ``smoother(points, at=seconds)`` measures the rate from the
    previous call's time (live mode, where dropped frames make the rate vary)."""

    def __init__(self, fps: float, min_cutoff: float = MIN_CUTOFF, beta: float = BETA) -> None:
        self.filter = OneEuroFilter(fps, min_cutoff=min_cutoff, beta=beta)
        self._last_time: float | None = None

    def __call__(self, points: np.ndarray, at: float | None = None) -> np.ndarray:
        """[68, 2] -> float32 [68, 2]."""
        if at is not None:
            if self._last_time is not None and at > self._last_time:
                self.filter.fps = 1.0 / (at - self._last_time)
            self._last_time = at
        scale = max(inter_ocular_distance(points), 1.0)
        return np.asarray(self.filter(points, scale=scale), dtype=np.float32)
