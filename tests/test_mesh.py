"""The landmark mesh (talkinghead.landmarks.mesh): identity, affine motion, grid_sample convention, baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from talkinghead.landmarks.mesh import (
    identity_grid,
    mesh_points,
    normalized_landmark_distance,
    sampling_grid,
    triangle_index_map,
    triangulate,
    warp_image,
)
from talkinghead.metrics.baselines import mesh_warp, mesh_warp_image, most_similar_source
from test_metrics_baselines import SIZE, _head


def _jittered(landmarks: np.ndarray, seed: int, scale: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (landmarks + rng.normal(0, scale, landmarks.shape)).astype(np.float32)


def test_identical_landmarks_give_the_exact_identity() -> None:
    image, landmarks = _head()
    grid = sampling_grid(landmarks, landmarks, SIZE)
    assert grid.dtype == np.float32 and grid.shape == (SIZE, SIZE, 2)
    np.testing.assert_array_equal(grid, identity_grid(SIZE, SIZE))
    # align_corners=False: pixel centre x sits at (2x + 1) / W - 1
    assert grid[0, 0, 0] == pytest.approx(1 / SIZE - 1) and grid[-1, -1, 1] == pytest.approx(1 - 1 / SIZE)
    np.testing.assert_array_equal(warp_image(image, grid), image)


def test_the_baseline_is_the_grid_sampled_by_warp_image() -> None:
    image, landmarks = _head()
    target = _jittered(landmarks, 3)
    expected = warp_image(image, sampling_grid(landmarks, target, SIZE))
    np.testing.assert_array_equal(mesh_warp_image(image, landmarks, target), expected)
    other = np.zeros_like(image)
    np.testing.assert_array_equal(mesh_warp(np.stack([other, image]), np.stack([_jittered(landmarks, 9, 6), landmarks]),
                                            target), expected)


def test_an_affine_motion_of_the_landmarks_gives_that_affine_map_inside_the_face() -> None:
    _, landmarks = _head()
    # target = A @ source + t for every landmark; the border anchors stay, so only triangles whose three
    # vertices are landmarks follow A exactly.
    matrix = np.array([[1.05, 0.08], [-0.06, 0.97]])
    shift = np.array([3.0, -2.0])
    target = (landmarks @ matrix.T + shift).astype(np.float64)
    grid = sampling_grid(landmarks, target, SIZE)
    points = mesh_points(target, SIZE, SIZE)
    triangles = triangulate(points)
    index = triangle_index_map(points, triangles, SIZE, SIZE)
    inner = np.flatnonzero((triangles < 68).all(1))
    face = np.isin(index, inner)
    assert face.sum() > 1500
    ys, xs = np.nonzero(face)
    expected = (np.stack([xs, ys], 1) - shift) @ np.linalg.inv(matrix).T  # target pixel -> source pixel
    got_x = ((grid[ys, xs, 0] + 1) * SIZE - 1) / 2
    got_y = ((grid[ys, xs, 1] + 1) * SIZE - 1) / 2
    np.testing.assert_allclose(np.stack([got_x, got_y], 1), expected, atol=2e-3)
    # and outside the face the grid is not that map (the anchors hold the border)
    corner = grid[0, 0]
    assert np.allclose(corner, identity_grid(SIZE, SIZE)[0, 0], atol=1e-6)


def test_the_whole_frame_is_covered() -> None:
    _, landmarks = _head()
    target = _jittered(landmarks, 4, 4.0)
    points = mesh_points(target, SIZE, SIZE)
    assert (triangle_index_map(points, triangulate(points), SIZE, SIZE) >= 0).all()


def test_torch_grid_sample_with_the_grid_matches_warp_image() -> None:
    image, landmarks = _head()
    target = _jittered(landmarks, 5, 3.0)
    grid = sampling_grid(landmarks, target, SIZE)
    reference = warp_image(image, grid).astype(np.float32)
    source = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    sampled = F.grid_sample(source, torch.from_numpy(grid)[None], mode="bilinear", padding_mode="border",
                            align_corners=False)[0].permute(1, 2, 0).numpy()
    difference = np.abs(sampled - reference)
    assert difference.max() <= 1.0, difference.max()
    # and warping changed the image (the comparison is not vacuous)
    assert np.abs(reference - image).mean() > 1.0


def test_grid_sample_follows_samples_outside_the_frame_with_the_border() -> None:
    image, _ = _head()
    grid = identity_grid(SIZE, SIZE)
    grid[..., 0] -= 0.5  # half a frame to the left: the left columns replicate column 0
    warped = warp_image(image, grid)
    np.testing.assert_array_equal(warped[:, 0], image[:, 0])
    np.testing.assert_array_equal(warped[:, SIZE // 4 + 5], image[:, 5])


def test_normalized_landmark_distance_ignores_position_and_scale() -> None:
    _, landmarks = _head()
    moved_and_scaled = landmarks * 1.3 + 7
    smiling = landmarks.copy()
    smiling[48:68, 1] += 3
    distances = normalized_landmark_distance(np.stack([moved_and_scaled, smiling]), landmarks)
    assert distances.shape == (2,)
    assert distances[0] < 1e-6 < 1e-2 < distances[1]
    assert most_similar_source(np.stack([smiling, moved_and_scaled]), landmarks) == 1


def test_bad_landmarks_are_refused_with_the_field_named() -> None:
    _, landmarks = _head()
    with pytest.raises(ValueError, match=r"\[68, 2\]"):
        sampling_grid(landmarks[:60], landmarks, SIZE)
    broken = landmarks.copy()
    broken[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sampling_grid(broken, landmarks, SIZE)
