"""Copy-source and mesh-warp baselines on synthetic images with landmarks placed by hand."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkinghead.data.synthetic import Identity, Motion, render_frame
from talkinghead.metrics.baselines import (
    border_points,
    copy_source,
    fixed_blend,
    mesh_warp,
    mesh_warp_blur,
    mesh_warp_image,
    most_similar_source,
    nearest_sources,
)
from talkinghead.metrics.realism import laplacian_variance

SIZE = 128


def _head(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured head-like blob on a dark background and 68 landmarks on and inside it (jaw arc, brows, eyes,
    nose, mouth rings), roughly in iBUG roles."""
    rng = np.random.default_rng(seed)
    image = np.full((SIZE, SIZE, 3), (30, 50, 70), np.uint8)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8), (5, 5), 0)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(mask, (64, 62), (34, 42), 0, 0, 360, 1, -1)
    image[mask > 0] = (texture[mask > 0] // 2 + np.array([110, 80, 60], np.uint8)).astype(np.uint8)
    cx, cy = 64.0, 62.0
    jaw_angle = np.linspace(np.pi * 0.95, np.pi * 0.05, 17)
    jaw = np.stack([cx + 30 * np.cos(jaw_angle), cy + 38 * np.sin(jaw_angle)], 1)
    brows = np.stack([np.linspace(40, 88, 10), np.full(10, 42.0) + np.abs(np.linspace(-4, 4, 10))], 1)
    nose = np.concatenate([np.stack([np.full(4, cx), np.linspace(50, 66, 4)], 1),
                           np.stack([np.linspace(57, 71, 5), np.full(5, 70.0)], 1)])
    ring = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    eyes = np.concatenate([np.stack([x + 7 * np.cos(ring), 52 + 3 * np.sin(ring)], 1) for x in (50.0, 78.0)])
    mouth_outer = np.stack([cx + 13 * np.cos(np.linspace(0, 2 * np.pi, 12, endpoint=False)),
                            82 + 5 * np.sin(np.linspace(0, 2 * np.pi, 12, endpoint=False))], 1)
    mouth_inner = np.stack([cx + 8 * np.cos(np.linspace(0, 2 * np.pi, 8, endpoint=False)),
                            82 + 2 * np.sin(np.linspace(0, 2 * np.pi, 8, endpoint=False))], 1)
    landmarks = np.concatenate([jaw, brows, nose, eyes, mouth_outer, mouth_inner]).astype(np.float32)
    assert landmarks.shape == (68, 2)
    return image, landmarks


def test_copy_source_is_exact_when_the_target_is_a_source_frame() -> None:
    rng = np.random.default_rng(1)
    image, landmarks = _head()
    sources = np.stack([rng.integers(0, 256, image.shape, dtype=np.uint8) for _ in range(4)])
    source_landmarks = np.stack([landmarks + rng.normal(0, 3, landmarks.shape) for _ in range(4)]).astype(np.float32)
    # A distractor with the same normalized shape as frame 2, only moved: the raw distance breaks the tie.
    source_landmarks[0] = source_landmarks[2] + [10.0, -5.0]
    for index in range(1, 4):
        assert most_similar_source(source_landmarks, source_landmarks[index]) == index
        np.testing.assert_array_equal(copy_source(sources, source_landmarks, source_landmarks[index]), sources[index])


def test_mesh_warp_reproduces_a_pure_translation() -> None:
    image, landmarks = _head()
    shift = np.array([5, 3])
    moved = landmarks + shift.astype(np.float32)
    warped = mesh_warp_image(image, landmarks, moved)
    translated = np.zeros_like(image)
    translated[shift[1]:, shift[0]:] = image[:-shift[1], :-shift[0]]
    # Inside the moved face the mesh is a pure translation; between the face and the fixed frame border the
    # triangles stretch, so only the (slightly eroded) face region is compared.
    face = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillConvexPoly(face, cv2.convexHull(np.round(moved).astype(np.int32)), 1)
    face = cv2.erode(face, np.ones((3, 3), np.uint8)).astype(bool)
    assert face.sum() > 2000
    difference = np.abs(warped[face].astype(int) - translated[face].astype(int))
    assert difference.max() <= 1, difference.max()
    # and the warp did move the image: the untranslated input differs there
    assert np.abs(image[face].astype(int) - translated[face].astype(int)).mean() > 10


def test_mesh_warp_without_motion_is_the_identity_and_covers_the_frame() -> None:
    image, landmarks = _head()
    np.testing.assert_array_equal(mesh_warp_image(image, landmarks, landmarks), image)
    rng = np.random.default_rng(2)
    target = landmarks + rng.normal(0, 2, landmarks.shape).astype(np.float32)
    warped = mesh_warp_image(image, landmarks, target)
    # every output pixel is written (no black holes between triangles); the background colour is never 0
    assert (warped.sum(-1) > 0).all()


def test_mesh_warp_picks_the_most_similar_source_frame() -> None:
    image, landmarks = _head()
    other = np.zeros_like(image)
    open_mouth = landmarks.copy()
    open_mouth[48:68, 1] += np.where(open_mouth[48:68, 1] > 82, 6, 0)
    sources = np.stack([other, image])
    source_landmarks = np.stack([open_mouth, landmarks])
    result = mesh_warp(sources, source_landmarks, landmarks + 2)
    assert result.mean() > 30  # warped from the textured frame, not the black one


def test_border_points_lie_on_the_frame_edge() -> None:
    points = border_points(100, 80, per_side=4)
    assert points.shape == (16, 2)
    on_edge = (points[:, 0] == 0) | (points[:, 0] == 79) | (points[:, 1] == 0) | (points[:, 1] == 99)
    assert on_edge.all()
    assert len({tuple(p) for p in points}) == 16


def test_mesh_warp_rejects_bad_landmarks() -> None:
    image, landmarks = _head()
    with pytest.raises(ValueError):
        mesh_warp_image(image, landmarks[:60], landmarks)


def test_mesh_warp_reproduces_a_translated_synthetic_head() -> None:
    """The same check on a rendered synthetic talking head."""
    frame, points = render_frame(Identity.sample(1), Motion.sample(seed=7, num_frames=1).frame(0), size=SIZE)
    dx, dy = 4, 3
    moved = np.asarray(points, np.float32) + np.array([dx, dy], np.float32)
    warped = mesh_warp_image(frame, points, moved)
    translated = np.zeros_like(frame)
    translated[dy:, dx:] = frame[:-dy, :-dx]
    face = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillConvexPoly(face, cv2.convexHull(np.round(moved).astype(np.int32)), 1)
    face = cv2.erode(face, np.ones((3, 3), np.uint8)).astype(bool)
    assert face.sum() > 1000
    assert np.abs(warped[face].astype(int) - translated[face].astype(int)).max() <= 1


def test_the_smoothing_baselines_are_a_blurred_warp_and_a_fixed_95_5_blend_of_the_two_nearest():
    """Issue 24: baselines that gain on the mesh warp with nothing learned."""
    image_a, points_a = _head(0)
    image_b, points_b = _head(1)
    points_b = points_b + 1.5  # a second source a little further from the target
    sources, landmarks = np.stack([image_b, image_a]), np.stack([points_b, points_a])
    target = points_a + np.array([1.0, -0.5])
    assert nearest_sources(landmarks, target, 2) == [1, 0] and most_similar_source(landmarks, target) == 1
    warp = mesh_warp(sources, landmarks, target)
    blurred = mesh_warp_blur(sources, landmarks, target)
    assert np.array_equal(blurred, cv2.GaussianBlur(warp, (5, 5), 0.5, sigmaY=0.5, borderType=cv2.BORDER_REFLECT_101))
    assert laplacian_variance(blurred) < 0.8 * laplacian_variance(warp)
    second = mesh_warp_image(image_b, points_b, target)
    expected = np.clip(np.rint(0.95 * warp.astype(np.float64) + (1 - 0.95) * second), 0, 255).astype(np.uint8)
    assert np.array_equal(fixed_blend(sources, landmarks, target), expected)
    assert not np.array_equal(expected, warp)
    assert np.array_equal(fixed_blend(sources[1:], landmarks[1:], target), warp)  # one source: the mesh warp
