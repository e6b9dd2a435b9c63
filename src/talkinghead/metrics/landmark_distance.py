"""Landmark-based metrics: AKD (average keypoint distance) and temporal jitter.

* AKD (FOMM's protocol, Siarohin et al. 2019): landmarks are detected on the output and on the ground truth, and
  the mean Euclidean distance over the 68 points and all frames is reported in pixels. The normalized variant
  divides each frame's distance by the ground truth's inter-ocular distance (outer eye corners 36 and 45: the
  project's one definition, `talkinghead.landmarks.geometry.inter_ocular_distance`), so that
  numbers are comparable across resolutions. Frames where either detection failed (NaN landmarks) are left out
  and counted.
* Jitter: the mean magnitude of the landmarks' second temporal difference (acceleration, px / frame²) of an
  animation, next to the same measure on the driver it follows. A ratio above 1 means the output shakes more than
  the motion asked for.

All landmarks are float ``[68, 2]`` (x, y) pixels in iBUG 68 order; sequences ``[T, 68, 2]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from talkinghead.landmarks.geometry import inter_ocular_distance


@dataclass(frozen=True)
class LandmarkDistance:
    """AKD in pixels and normalized by the inter-ocular distance, over ``frames`` frames (``missing`` left out)."""

    akd: float | None
    normalized_akd: float | None
    frames: int
    missing: int

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Jitter:
    """Mean landmark acceleration of the output and of the driver (px / frame²) and their ratio."""

    output_acceleration: float | None
    driver_acceleration: float | None
    ratio: float | None
    frames: int

    def to_json(self) -> dict:
        return asdict(self)


def _as_sequence(name: str, landmarks: np.ndarray) -> np.ndarray:
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim == 2:
        landmarks = landmarks[None]
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
        raise ValueError(f"{name}: expected landmarks [T, 68, 2] or [68, 2], got {landmarks.shape}")
    return landmarks


def landmark_distance(output_landmarks: np.ndarray, target_landmarks: np.ndarray) -> LandmarkDistance:
    """AKD between landmarks detected on the output and on the ground truth ([T, 68, 2] each; NaN = not found)."""
    output = _as_sequence("output_landmarks", output_landmarks)
    target = _as_sequence("target_landmarks", target_landmarks)
    if output.shape != target.shape:
        raise ValueError(f"landmark_distance: output {output.shape} and target {target.shape} differ in length")
    found = np.isfinite(output).all(axis=(1, 2)) & np.isfinite(target).all(axis=(1, 2))
    missing = int((~found).sum())
    if not found.any():
        return LandmarkDistance(akd=None, normalized_akd=None, frames=len(output), missing=missing)
    per_frame = np.linalg.norm(output[found] - target[found], axis=-1).mean(-1)  # [T_found]
    scale = inter_ocular_distance(target[found])
    if np.any(scale <= 0):
        raise ValueError("landmark_distance: a ground-truth face has coincident outer eye corners (36, 45)")
    return LandmarkDistance(akd=float(per_frame.mean()), normalized_akd=float((per_frame / scale).mean()),
                            frames=len(output), missing=missing)


def mean_acceleration(landmarks: np.ndarray) -> float | None:
    """Mean |x[t+1] - 2 x[t] + x[t-1]| over points and frames of a [T, 68, 2] sequence (None for T < 3).
    Triples with a missing (NaN) frame are left out."""
    landmarks = _as_sequence("landmarks", landmarks)
    if len(landmarks) < 3:
        return None
    acceleration = landmarks[2:] - 2 * landmarks[1:-1] + landmarks[:-2]  # [T-2, 68, 2]
    magnitude = np.linalg.norm(acceleration, axis=-1).mean(-1)  # [T-2]
    magnitude = magnitude[np.isfinite(magnitude)]
    return float(magnitude.mean()) if magnitude.size else None


def jitter(output_landmarks: np.ndarray, driver_landmarks: np.ndarray) -> Jitter:
    """Temporal jitter of an animation: its landmark acceleration vs the (retargeted) driver's, same frames and
    same pixel space."""
    output = _as_sequence("output_landmarks", output_landmarks)
    driver = _as_sequence("driver_landmarks", driver_landmarks)
    if output.shape != driver.shape:
        raise ValueError(f"jitter: output {output.shape} and driver {driver.shape} differ in length")
    out_acc, drv_acc = mean_acceleration(output), mean_acceleration(driver)
    ratio = out_acc / drv_acc if out_acc is not None and drv_acc else None
    return Jitter(output_acceleration=out_acc, driver_acceleration=drv_acc, ratio=ratio, frames=len(output))


def detect_landmark_sequence(images: Iterable[np.ndarray], detector=None) -> np.ndarray:
    """Landmarks [T, 68, 2] of uint8 RGB images, NaN where no face was found.

    ``detector(image) -> [68, 2] | None`` defaults to ``talkinghead.landmarks.detect_landmarks`` (imported
    lazily, so the metrics work on landmark arrays without a detector installed), whose ``NoFaceError`` counts as
    a missing face.
    """
    missing_errors: tuple[type[Exception], ...] = ()
    if detector is None:
        from talkinghead.landmarks import NoFaceError
        from talkinghead.landmarks import detect_landmarks as detector

        missing_errors = (NoFaceError,)
    result = []
    for index, image in enumerate(images):
        try:
            points = detector(image) if not missing_errors else detector(image, source=f"frame {index}")
        except missing_errors:
            points = None
        result.append(np.full((68, 2), np.nan) if points is None else np.asarray(points, dtype=np.float64))
    return np.stack(result) if result else np.zeros((0, 68, 2))
