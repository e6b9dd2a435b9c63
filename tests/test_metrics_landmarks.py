"""AKD and temporal jitter on landmark arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.metrics.landmark_distance import (
    detect_landmark_sequence,
    jitter,
    landmark_distance,
    mean_acceleration,
)


def _face(frames: int = 4) -> np.ndarray:
    rng = np.random.default_rng(3)
    points = rng.uniform(20, 100, (68, 2))
    points[36], points[45] = [40, 50], [90, 50]  # inter-ocular distance 50
    return np.repeat(points[None], frames, axis=0)


def test_akd_of_a_constant_offset_is_its_length() -> None:
    target = _face()
    result = landmark_distance(target + [3.0, 4.0], target)
    assert result.akd == pytest.approx(5.0)
    assert result.normalized_akd == pytest.approx(5.0 / 50.0)
    assert (result.frames, result.missing) == (4, 0)


def test_akd_leaves_out_and_counts_missing_detections() -> None:
    target = _face()
    output = target + [0.0, 2.0]
    output[1] = np.nan
    result = landmark_distance(output, target)
    assert result.akd == pytest.approx(2.0) and result.missing == 1
    assert landmark_distance(np.full_like(target, np.nan), target).akd is None


def test_jitter_is_zero_for_constant_velocity_and_compares_with_the_driver() -> None:
    steps = np.arange(6, dtype=np.float64)[:, None, None]
    driver = _face(6) + steps * [2.0, 0.0]  # constant velocity: no acceleration
    assert mean_acceleration(driver) == pytest.approx(0.0)
    shaky = driver.copy()
    shaky[::2] += [0.0, 1.0]  # alternating +1/0 vertical: |a| = 2 at every interior frame
    assert mean_acceleration(shaky) == pytest.approx(2.0)
    bent = _face(6) + steps**2 * [0.5, 0.0]  # x = t²/2: acceleration 1 everywhere
    result = jitter(shaky + bent - _face(6), bent)
    assert result.driver_acceleration == pytest.approx(1.0)
    assert result.ratio is not None and result.ratio > 1.0
    assert jitter(driver[:2], driver[:2]).ratio is None


def test_detect_landmark_sequence_marks_missing_faces_with_nan() -> None:
    face = _face(1)[0]
    images = [np.zeros((8, 8, 3), np.uint8), np.ones((8, 8, 3), np.uint8)]
    result = detect_landmark_sequence(images, detector=lambda image: face if image.any() else None)
    assert result.shape == (2, 68, 2)
    assert np.isnan(result[0]).all() and np.array_equal(result[1], face)


def test_detect_landmark_sequence_with_the_default_detector_reports_no_face_as_missing() -> None:
    result = detect_landmark_sequence([np.full((96, 96, 3), 127, np.uint8)])
    assert result.shape == (1, 68, 2) and np.isnan(result).all()
