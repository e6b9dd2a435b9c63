"""The landmark mesh: a piecewise-affine map between two faces' landmarks (issue 15, "landmark flow").

One triangulation (Delaunay, `triangulate`) over the 68 landmarks plus fixed anchor points on the frame border
(`border_points`: corners and edge points, which keep the background in place) covers the whole frame. For a
target (driver) frame and a source frame, `sampling_grid` gives, for every target pixel, where to sample the
source: inside each target triangle the affine map that takes the target triangle onto the matching source
triangle. It is the backward grid of `torch.nn.functional.grid_sample` with ``align_corners=False``:
pixel centres at integer pixel coordinates, ``x_norm = (2 x + 1) / W - 1`` (-1 and 1 are the frame's outer
edges). `warp_image` samples a uint8 image with such a grid (bilinear, border replicated), so the mesh-warp
baseline (`talkinghead.metrics.baselines`), the episode data and the warp-guided generator all use one map.

`normalized_landmark_distance` is the distance that picks the nearest source (position and scale removed, so
pose and expression count). numpy, cv2 and scipy only.

Landmarks are float ``[68, 2]`` (x, y) pixels with pixel centres at integers; images uint8 ``[H, W, 3]``.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from scipy.spatial import Delaunay

NUM_LANDMARKS = 68
BORDER_PER_SIDE = 4
"""Anchor points per frame edge (4 corners + 3 inside each edge = 16 anchors)."""


def border_points(height: int, width: int, per_side: int = BORDER_PER_SIDE) -> np.ndarray:
    """Fixed anchor points on the frame border: the 4 corners and ``per_side - 1`` evenly spaced points inside each
    edge. [4 * per_side, 2] float (x, y)."""
    xs = np.linspace(0, width - 1, per_side + 1)
    ys = np.linspace(0, height - 1, per_side + 1)
    top = np.stack([xs[:-1], np.zeros(per_side)], 1)
    right = np.stack([np.full(per_side, width - 1), ys[:-1]], 1)
    bottom = np.stack([xs[::-1][:-1], np.full(per_side, height - 1)], 1)
    left = np.stack([np.zeros(per_side), ys[::-1][:-1]], 1)
    return np.concatenate([top, right, bottom, left])


def triangulate(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles [M, 3] (vertex indices) of points [P, 2]; duplicate points are tolerated."""
    return Delaunay(points, qhull_options="Qbb Qc Qz Q12").simplices


def mesh_points(landmarks: np.ndarray, height: int, width: int, per_side: int = BORDER_PER_SIDE) -> np.ndarray:
    """The mesh's vertices: 68 landmarks then the border anchors, [68 + 4 * per_side, 2] float64."""
    points = np.asarray(landmarks, np.float64)
    if points.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"landmarks must be [68, 2] (x, y) pixels, got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("landmarks contain NaN or infinity; track the frame again or drop it")
    return np.concatenate([points, border_points(height, width, per_side)])


def triangle_index_map(target_points: np.ndarray, triangles: np.ndarray, height: int, width: int) -> np.ndarray:
    """int32 [H, W]: the triangle (row of ``triangles``) each target pixel centre belongs to, -1 for none.

    Rasterized with cv2.fillConvexPoly (1/16-pixel vertices); where triangles share an edge the later one wins.
    Zero-area target triangles cover no pixel of their own and are skipped."""
    index = np.full((height, width), -1, np.int32)
    for number, triangle in enumerate(triangles):
        corners = target_points[triangle]
        edges = corners[1:] - corners[0]
        if abs(edges[0, 0] * edges[1, 1] - edges[0, 1] * edges[1, 0]) < 1e-6:
            continue
        cv2.fillConvexPoly(index, np.round(corners * 16).astype(np.int32), number, lineType=cv2.LINE_8, shift=4)
    return index


def _affine_maps(source_points: np.ndarray, target_points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Per triangle the affine map target pixel -> source pixel: [M, 3, 2] with [x y 1] @ A = (x_s, y_s).

    Solved for every non-degenerate target triangle, even where the source triangle collapsed (e.g. three
    collinear brow points); degenerate target triangles get the identity (they own no pixel)."""
    target = np.concatenate([target_points[triangles], np.ones((len(triangles), 3, 1))], -1)  # [M, 3, 3]
    source = source_points[triangles]  # [M, 3, 2]
    maps = np.tile(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), (len(triangles), 1, 1))
    regular = np.abs(np.linalg.det(target)) > 1e-6
    maps[regular] = np.linalg.solve(target[regular], source[regular])
    unmoved = (source == target_points[triangles]).all(axis=(1, 2))
    maps[unmoved] = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # exactly, not up to rounding
    return maps


def sampling_grid(source_landmarks: np.ndarray, target_landmarks: np.ndarray, size: int | tuple[int, int],
                  border_per_side: int = BORDER_PER_SIDE) -> np.ndarray:
    """The mesh warp's backward grid: float32 [H, W, 2] (x, y) in grid_sample coordinates (align_corners=False).

    ``grid[y, x]`` is where output (target) pixel (x, y) samples the source. The mesh is triangulated over the
    target's points (68 landmarks + border anchors), so it covers the whole frame; a pixel no triangle claims
    (only possible with degenerate landmarks) samples the source at its own position.
    ``size``: H = W = size, or (H, W)."""
    return sampling_grids(np.asarray(source_landmarks)[None], target_landmarks, size, border_per_side)[0]


def sampling_grids(source_landmarks: np.ndarray, target_landmarks: np.ndarray, size: int | tuple[int, int],
                   border_per_side: int = BORDER_PER_SIDE) -> np.ndarray:
    """`sampling_grid` from one target to each of N sources [N, 68, 2] -> float32 [N, H, W, 2], identical to N
    calls; the target's triangulation and pixel-to-triangle map (most of the cost) are computed once."""
    height, width = (size, size) if isinstance(size, int) else size
    target_points = mesh_points(target_landmarks, height, width, border_per_side)
    triangles = triangulate(target_points)
    index = triangle_index_map(target_points, triangles, height, width)
    ys, xs = _pixel_coordinates(height, width)
    grids = np.empty((len(source_landmarks), height, width, 2), np.float32)
    for k, source in enumerate(source_landmarks):
        source_points = mesh_points(source, height, width, border_per_side)
        # An extra identity map at row M serves the unclaimed pixels (index -1).
        maps = np.concatenate([_affine_maps(source_points, target_points, triangles),
                               np.array([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]])])
        maps = maps.astype(np.float32)[index]  # [H, W, 3, 2]
        source_x = xs * maps[..., 0, 0] + ys * maps[..., 1, 0] + maps[..., 2, 0]
        source_y = xs * maps[..., 0, 1] + ys * maps[..., 1, 1] + maps[..., 2, 1]
        grids[k] = _pixels_to_grid(source_x, source_y)
    return grids


@functools.lru_cache(maxsize=8)
def _pixel_coordinates(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(ys, xs) float32 [H, W] pixel centres, computed once per size (read-only)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ys.setflags(write=False)
    xs.setflags(write=False)
    return ys, xs


def identity_grid(height: int, width: int) -> np.ndarray:
    """The grid that samples every pixel at its own centre, float32 [H, W, 2] (what `sampling_grid` gives for
    identical landmarks, bit for bit)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return _pixels_to_grid(xs, ys)


def _pixels_to_grid(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Source pixel coordinates (x, y) [H, W] -> grid_sample coordinates [H, W, 2], align_corners=False:
    x_norm = (2 x + 1) / W - 1."""
    height, width = x.shape
    grid = np.empty((height, width, 2), np.float32)
    grid[..., 0] = (2 * x + 1) / width - 1
    grid[..., 1] = (2 * y + 1) / height - 1
    return grid


def warp_image(image: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Sample ``image`` uint8 [H, W, C] at ``grid`` float [H', W', 2] (grid_sample coordinates of the image,
    align_corners=False): bilinear, border replicated (= grid_sample's padding_mode="border"). -> uint8 [H', W', C].
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"warp_image: expected a uint8 image [H, W, C], got {image.dtype} {image.shape}")
    if grid.ndim != 3 or grid.shape[-1] != 2:
        raise ValueError(f"warp_image: expected a grid [H, W, 2], got {grid.shape}")
    height, width = image.shape[:2]
    x = ((grid[..., 0].astype(np.float32) + 1) * width - 1) / 2  # of the image's size, not the grid's
    y = ((grid[..., 1].astype(np.float32) + 1) * height - 1) / 2
    return cv2.remap(image, x, y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def normalized_landmarks(points: np.ndarray) -> np.ndarray:
    """Landmarks with position and scale removed: centred, divided by the RMS distance from the centre."""
    centred = points - points.mean(-2, keepdims=True)
    size = np.sqrt((centred**2).sum(-1).mean(-1))[..., None, None]
    return centred / np.maximum(size, 1e-9)


def normalized_landmark_distance(source_landmarks: np.ndarray, target_landmarks: np.ndarray) -> np.ndarray:
    """Mean normalized landmark distance of each source to the target: [K, 68, 2], [68, 2] -> float64 [K].

    Position and scale are removed from both (centred, divided by their RMS radius), so pose and expression
    count; smaller is nearer."""
    sources = np.asarray(source_landmarks, dtype=np.float64)
    target = np.asarray(target_landmarks, dtype=np.float64)
    if sources.ndim != 3 or sources.shape[1:] != (NUM_LANDMARKS, 2) or len(sources) == 0:
        raise ValueError(f"source_landmarks must be [K >= 1, 68, 2], got {sources.shape}")
    if target.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"target_landmarks must be [68, 2], got {target.shape}")
    return np.linalg.norm(normalized_landmarks(sources) - normalized_landmarks(target)[None], axis=-1).mean(-1)
