"""CSIM with dlib descriptors on the shared portraits; the ArcFace path's alignment and its errors."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest

from talkinghead.metrics.identity import (
    ARCFACE_TEMPLATE_112,
    ArcFaceIdentity,
    CachedIdentity,
    DlibIdentity,
    align_arcface,
    cosine_similarity,
    csim,
    five_points_from_68,
    similarity_transform,
)

SAME_MAN = ("bilayer_man_1__source.jpg", "bilayer_man_2__target.jpg")
OTHERS = ("einstein__lp_s12.jpg", "macron__lia.png", "yann_lecun__fom_09.png", "theresa_may__fom_03.png")


def _load(path, max_side: int = 400) -> np.ndarray:
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    scale = max_side / max(image.shape[:2])
    if scale < 1:  # the 1280-px photos take 0.7 s to search at full size
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image


@pytest.fixture(scope="module")
def identity() -> CachedIdentity:
    return CachedIdentity(DlibIdentity())


def test_csim_same_person_beats_different_people(shared_data, identity) -> None:
    portraits = shared_data / "portraits"
    first, second = (_load(portraits / name) for name in SAME_MAN)
    assert csim(identity, first, first) == pytest.approx(1.0, abs=1e-12)
    same = csim(identity, first, second)
    different = [csim(identity, first, _load(portraits / name)) for name in OTHERS]
    assert all(value is not None for value in [same, *different])
    assert same > max(different), (same, different)


def test_descriptors_are_cached_once_per_image(shared_data, identity, tmp_path) -> None:
    image = _load(shared_data / "portraits" / SAME_MAN[0])
    identity.descriptor(image)
    misses = identity.misses
    again = identity.descriptor(image.copy())
    assert identity.misses == misses and identity.hits >= 1
    identity.save(tmp_path / "cache.npz")
    restored = CachedIdentity(identity.backend)
    restored.load(tmp_path / "cache.npz")
    assert len(restored) == len(identity)
    np.testing.assert_array_equal(restored.descriptor(image), again)
    assert restored.misses == 0


def test_missing_face_is_reported_not_invented(identity) -> None:
    blank = np.full((128, 128, 3), 127, np.uint8)
    assert identity.descriptor(blank) is None
    assert csim(identity, blank, blank) is None


def test_cosine_similarity_known_values() -> None:
    assert cosine_similarity(np.array([1.0, 0.0]), np.array([0.0, 2.0])) == pytest.approx(0.0)
    assert cosine_similarity(np.array([1.0, 1.0]), np.array([3.0, 3.0])) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        cosine_similarity(np.zeros(3), np.ones(3))


def test_arcface_alignment_puts_the_five_points_on_the_template() -> None:
    angle, scale, shift = 0.3, 2.5, np.array([40.0, 25.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = ARCFACE_TEMPLATE_112 @ (scale * rotation).T + shift
    matrix = similarity_transform(points, ARCFACE_TEMPLATE_112)
    mapped = points @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped, ARCFACE_TEMPLATE_112, atol=1e-9)
    # A dot drawn at each point lands on the template in the 112x112 crop.
    image = np.zeros((400, 400, 3), np.uint8)
    for x, y in points:
        cv2.circle(image, (round(x), round(y)), 6, (255, 255, 255), -1)
    aligned = align_arcface(image, points)
    assert aligned.shape == (112, 112, 3)
    for x, y in ARCFACE_TEMPLATE_112:
        assert aligned[round(y), round(x)].min() > 100


def test_five_points_from_68_uses_eye_centres_nose_tip_and_mouth_corners() -> None:
    landmarks = np.zeros((68, 2))
    landmarks[36:42] = [10, 20]
    landmarks[42:48] = [30, 20]
    landmarks[30] = [20, 30]
    landmarks[48] = [12, 40]
    landmarks[54] = [28, 40]
    np.testing.assert_array_equal(five_points_from_68(landmarks), [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]])


def test_arcface_errors_say_what_to_do(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="ArcFace ONNX model not found"):
        ArcFaceIdentity(tmp_path / "absent.onnx")
    if importlib.util.find_spec("onnxruntime") is None:
        model = tmp_path / "arcface.onnx"
        model.write_bytes(b"")
        with pytest.raises(ImportError, match=r"talkinghead\[arcface\]"):
            ArcFaceIdentity(model)
