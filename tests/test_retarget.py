"""Retargeting a driver's landmarks onto a source face (talkinghead.landmarks.retarget)."""

from __future__ import annotations

import numpy as np
import pytest

from _inference_helpers import face
from talkinghead.landmarks.geometry import inter_ocular_distance as interocular
from talkinghead.landmarks.retarget import (
    Retargeter,
    find_best_frame,
    normalized_distance,
    retarget,
    similarity_transform,
)


def mouth_opening(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[66] - points[62]))


def eye_opening(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[37] - points[41]) + np.linalg.norm(points[43] - points[47]))


def jaw_width(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[16] - points[0]))


def driver_sequence() -> np.ndarray:
    """A driver that talks (mouth 0 -> 0.3 -> 0), blinks and moves and tilts its head."""
    frames = []
    for i in range(12):
        phase = np.sin(np.pi * i / 11)
        frames.append(face(mouth_open=0.3 * phase, eye_open=0.06 * (1 - 0.9 * (i == 6)),
                           centre=(110 + 5 * phase, 95 - 3 * phase), scale=70 + 4 * phase, angle=0.1 * phase))
    return np.stack(frames)


def test_similarity_transform_recovers_a_known_transform():
    points = face()
    angle, scale, shift = 0.3, 1.7, np.array([4.0, -9.0])
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    fitted_linear, fitted_shift = similarity_transform(points, points @ linear.T + shift)
    np.testing.assert_allclose(fitted_linear, linear, atol=1e-9)
    np.testing.assert_allclose(fitted_shift, shift, atol=1e-6)


@pytest.mark.parametrize("mode", ["relative", "absolute"])
def test_driver_onto_its_own_first_frame_is_identity(mode):
    driver = driver_sequence()
    result = retarget(driver, driver[0], mode=mode, reference=0)
    assert result.shape == driver.shape and result.dtype == np.float32
    np.testing.assert_allclose(result, driver, atol=1e-3)


def test_relative_keeps_the_source_shape_and_follows_mouth_and_eyes():
    driver = driver_sequence()
    # A differently shaped face: narrow jaw, wide-set small eyes, small mouth, elsewhere and smaller.
    source = face(jaw_width=0.75, eye_spacing=0.5, eye_width=0.15, mouth_width=0.35,
                  centre=(64.0, 70.0), scale=40.0)
    result = retarget(driver, source, mode="relative")
    for frame, out in zip(driver, result, strict=True):
        # The source's proportions stay (ratios are free of scale); the driver's differ.
        assert interocular(out) / jaw_width(out) == pytest.approx(interocular(source) / jaw_width(source), rel=0.03)
        assert interocular(frame) / jaw_width(frame) != pytest.approx(interocular(out) / jaw_width(out), rel=0.05)
        # Mouth opening follows the driver, in proportion to mouth width (source mouth 0.35 vs driver 0.5).
        driver_open = mouth_opening(frame) / jaw_width(frame)
        out_open = mouth_opening(out) / jaw_width(out)
        assert out_open == pytest.approx(driver_open * (0.35 / 0.5) / 0.75, rel=0.35, abs=0.01)
    openings = [mouth_opening(p) for p in result]
    assert openings[0] == pytest.approx(mouth_opening(source), abs=1e-3)
    assert max(openings) > mouth_opening(source) + 5.0  # the mouth opens ...
    assert openings[-1] == pytest.approx(openings[0], abs=0.5)  # ... and closes again
    # The blink at frame 6 shows.
    assert eye_opening(result[6]) < 0.2 * eye_opening(result[5])
    # Absolute mode instead imposes the driver's shape (the paper's "personality mismatch").
    absolute = retarget(driver, source, mode="absolute")
    assert interocular(absolute[0]) / jaw_width(absolute[0]) == pytest.approx(
        interocular(driver[0]) / jaw_width(driver[0]), rel=1e-3)
    # ... at the source's position and scale.
    np.testing.assert_allclose(absolute[0].mean(0), source.mean(0), atol=3.0)


def test_head_motion_is_transferred_around_the_source():
    driver = driver_sequence()
    source = face(jaw_width=0.8, centre=(64.0, 64.0), scale=40.0)
    result = retarget(driver, source)
    # Driver tilts by 0.1 rad at the middle frame; the source tilts with it.
    def tilt(points):
        d = points[45] - points[36]
        return np.arctan2(d[1], d[0])
    assert tilt(result[5]) - tilt(result[0]) == pytest.approx(tilt(driver[5]) - tilt(driver[0]), abs=0.02)


def test_find_best_frame_picks_the_most_similar_pose_and_expression():
    driver = driver_sequence()
    source = face(mouth_open=0.3 * np.sin(np.pi * 5 / 11), angle=0.1 * np.sin(np.pi * 5 / 11), scale=30.0,
                  centre=(10.0, 20.0))
    assert find_best_frame(driver, source) in (5, 6)
    assert find_best_frame(driver, face(scale=50.0)) in (0, 11)
    assert normalized_distance(driver[0], driver[0] * 2 + 3) == pytest.approx(0.0, abs=1e-6)


def test_bad_input_is_an_error():
    with pytest.raises(ValueError, match="68, 2"):
        Retargeter(np.zeros((5, 2)), face())
    with pytest.raises(ValueError, match="mode"):
        Retargeter(face(), face(), mode="sideways")
    with pytest.raises(ValueError, match="NaN"):
        Retargeter(face() * np.nan, face())
