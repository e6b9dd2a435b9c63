"""CSIM, dlib's descriptor distance and 0.6 verification on the shared portraits; the ArcFace path's alignment, its
errors, and its deliberate lack of a distance threshold."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest

from talkinghead.metrics.identity import (
    ARCFACE_TEMPLATE_112,
    DLIB_SAME_PERSON_THRESHOLD,
    ArcFaceIdentity,
    CachedIdentity,
    DlibIdentity,
    align_arcface,
    cosine_similarity,
    csim,
    descriptor_distance,
    five_points_from_68,
    identity_distance,
    similarity_transform,
    verified,
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


def test_dlib_distance_verifies_the_same_man_and_rejects_others_where_cosine_stays_high(shared_data, identity) -> None:
    """Measured: the same man's two photos are 0.41 apart, the four other people 0.73-0.87, while their cosine
    to him is still 0.82-0.88: CSIM's scale is compressed, the 0.6 threshold separates them."""
    portraits = shared_data / "portraits"
    first, second = (identity.descriptor(_load(portraits / name)) for name in SAME_MAN)
    others = [identity.descriptor(_load(portraits / name)) for name in OTHERS]
    same = descriptor_distance(first, second)
    different = [descriptor_distance(first, other) for other in others]
    assert same < DLIB_SAME_PERSON_THRESHOLD < min(different), (same, different)
    assert verified(same, DLIB_SAME_PERSON_THRESHOLD) == 1.0
    assert [verified(d, DLIB_SAME_PERSON_THRESHOLD) for d in different] == [0.0] * len(OTHERS)
    assert min(cosine_similarity(first, other) for other in others) > 0.8  # why a cosine alone says little
    assert identity_distance(first, [second, *others]) == pytest.approx(np.mean([same, *different]))


def test_descriptor_distance_and_verification_known_values() -> None:
    assert descriptor_distance(np.array([0.0, 0.0]), np.array([3.0, 4.0])) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="dimensions"):
        descriptor_distance(np.zeros(2), np.zeros(3))
    # The mean distance to several references, like CSIM's mean cosine; nothing without a face or a reference.
    assert identity_distance(np.zeros(2), [np.array([0.3, 0.4]), np.array([0.0, 1.5])]) == pytest.approx(1.0)
    assert identity_distance(None, [np.zeros(2)]) is None and identity_distance(np.zeros(2), []) is None
    # Strictly below the threshold passes; the threshold itself does not.
    assert verified(0.59, 0.6) == 1.0 and verified(0.6, 0.6) == 0.0 and verified(None, 0.6) is None


def test_only_dlib_declares_a_same_person_threshold() -> None:
    """dlib's 0.6 is its model's documented threshold; an ArcFace ONNX file comes with none, so ArcFace reports
    no distance or verification (metrics.identity's docstring gives the reason, the report states it)."""
    assert DlibIdentity.same_person_threshold == DLIB_SAME_PERSON_THRESHOLD == 0.6
    assert ArcFaceIdentity.same_person_threshold is None
    arcface = object.__new__(ArcFaceIdentity)  # the class's declaration, without an ONNX model to load
    assert CachedIdentity(arcface).same_person_threshold is None
    assert CachedIdentity(object.__new__(DlibIdentity)).same_person_threshold == 0.6


def _tiny_arcface_onnx(path) -> None:
    """A stand-in ArcFace model: [1, 3, 112, 112] -> a fixed random projection to 16 dimensions."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).normal(size=(3 * 112 * 112, 16)).astype(np.float32)
    nodes = [helper.make_node("Flatten", ["input"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["embedding"])]
    graph = helper.make_graph(nodes, "tiny_arcface",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 112, 112])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 16])],
                              [numpy_helper.from_array(weights, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def test_arcface_scores_csim_and_leaves_out_dlib_distance(shared_data, tmp_path) -> None:
    """The ArcFace path end to end (a stand-in ONNX model): CSIM of unit embeddings, and no ID dist / Verified@0.6
    in the scorer's values (dlib's threshold does not apply)."""
    pytest.importorskip("onnxruntime")
    from talkinghead.evaluate.scoring import FrameScorer

    _tiny_arcface_onnx(tmp_path / "arcface.onnx")
    arcface = CachedIdentity(ArcFaceIdentity(tmp_path / "arcface.onnx"))
    first, second = (_load(shared_data / "portraits" / name) for name in SAME_MAN)
    embedding = arcface.descriptor(first)
    assert embedding.shape == (16,) and np.linalg.norm(embedding) == pytest.approx(1.0)
    values = FrameScorer(arcface, lambda image: None).score(second, identity_references=[(first, "first")])
    assert values["csim"] == pytest.approx(cosine_similarity(arcface.descriptor(second), embedding))
    assert "identity_distance" not in values and "verified" not in values
