"""Head yaw from 68 landmarks (landmarks/pose.py), checked where the truth is known: synthetic heads of random
shape in random poses, mirrored faces, and the evaluation's fallback for datasets prepared without yaw."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.data.synthetic import Identity
from talkinghead.data.synthetic.geometry import frame_landmarks
from talkinghead.data.synthetic.motion import FramePose
from talkinghead.landmarks.pose import estimate_yaw

# iBUG 68 mirror: the index each point takes when the face is flipped left-right.
_MIRROR = np.array(
    [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,  # jaw
     26, 25, 24, 23, 22, 21, 20, 19, 18, 17,  # brows
     27, 28, 29, 30, 35, 34, 33, 32, 31,  # nose
     45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,  # eyes
     54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,  # outer lips
     64, 63, 62, 61, 60, 67, 66, 65])  # inner lips


def _random_faces(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    faces, yaws = [], []
    for i in range(count):
        yaw = rng.uniform(-40, 40)
        pose = FramePose(yaw=yaw, pitch=rng.uniform(-12, 12), roll=rng.uniform(-12, 12),
                         mouth_open=rng.uniform(0, 1), smile=rng.uniform(0, 1), scale=rng.uniform(0.9, 1.1))
        faces.append(frame_landmarks(Identity.sample(100 + i), pose, 128))
        yaws.append(yaw)
    return np.stack(faces), np.array(yaws)


def test_yaw_of_synthetic_heads_is_within_a_few_degrees():
    faces, truth = _random_faces(60)
    estimate = estimate_yaw(faces, 128)
    error = np.abs(estimate - truth)
    assert estimate.shape == (60,)
    assert error.mean() < 3.0 and error.max() < 8.0, (error.mean(), error.max())
    # The 20° split is decided correctly for every pair of faces whose true yaws are not within 8° of it.
    differs = np.abs(truth[:, None] - truth[None]) > 20
    clear = np.abs(np.abs(truth[:, None] - truth[None]) - 20) > 8
    assert np.array_equal((np.abs(estimate[:, None] - estimate[None]) > 20)[clear], differs[clear])


def test_mirrored_face_has_the_opposite_yaw_and_a_single_face_gives_a_float():
    faces, _ = _random_faces(12, seed=1)
    mirrored = faces[:, _MIRROR].copy()
    mirrored[..., 0] = 128 - mirrored[..., 0]
    assert np.allclose(estimate_yaw(mirrored, (128, 128)), -estimate_yaw(faces, 128), atol=1.0)
    single = estimate_yaw(faces[0], 128)
    assert isinstance(single, float) and single == pytest.approx(float(estimate_yaw(faces[:1], 128)[0]))


def test_bad_landmarks_are_refused():
    with pytest.raises(ValueError, match=r"\[68, 2\]"):
        estimate_yaw(np.zeros((5, 2)), 128)
    faces, _ = _random_faces(1)
    faces[0, 30, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        estimate_yaw(faces, 128)


def test_evaluation_estimates_yaw_for_a_dataset_prepared_without_it():
    """video_yaw on a real-looking dataset (no motion seed, no "yaw" in meta.json) estimates it from the stored
    landmarks; on synthetic landmarks that estimate tracks the true motion."""
    from talkinghead.evaluate.frames import video_yaw

    faces, truth = _random_faces(10, seed=2)

    class _Index:
        image_size = 128

        def meta(self, video_index):
            return {"key": "clip.mp4"}

        def landmarks(self, video_index):
            return faces

    yaw = video_yaw(_Index(), 0)
    assert yaw.shape == (10,) and np.abs(yaw - truth).max() < 8.0
