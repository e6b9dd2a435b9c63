"""Baselines every evaluation report carries (issue 6): a model must beat these to be worth its training.

* ``copy_source``: the source frame whose landmarks are most similar to the target's (normalized landmark distance:
  position and scale removed, so pose and expression count), returned unchanged.
* ``mesh_warp``: the most similar source frame, warped piecewise-affinely from its landmarks to the target's over a
  Delaunay triangulation of the 68 points plus fixed points on the frame border (corners and edge points, which
  keep the background in place). One OpenCV affine warp per triangle, on the triangle's bounding box, composited
  through a triangle mask
  (the affine map goes from output to source pixels, so a collapsed source triangle is still well defined).

Images are uint8 RGB ``[H, W, 3]``; landmarks float ``[68, 2]`` (x, y) pixels; sources ``[K, ...]``.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay


def _normalize(points: np.ndarray) -> np.ndarray:
    """Landmarks with position and scale removed: centred, divided by the RMS distance from the centre."""
    centred = points - points.mean(-2, keepdims=True)
    size = np.sqrt((centred**2).sum(-1).mean(-1))[..., None, None]
    return centred / np.maximum(size, 1e-9)


def most_similar_source(source_landmarks: np.ndarray, target_landmarks: np.ndarray) -> int:
    """Index of the source frame most similar to the target: the smallest mean normalized landmark distance,
    ties broken by the raw pixel distance (so a source frame equal to the target always wins)."""
    sources = np.asarray(source_landmarks, dtype=np.float64)
    target = np.asarray(target_landmarks, dtype=np.float64)
    if sources.ndim != 3 or sources.shape[1:] != (68, 2) or len(sources) == 0:
        raise ValueError(f"source_landmarks must be [K >= 1, 68, 2], got {sources.shape}")
    if target.shape != (68, 2):
        raise ValueError(f"target_landmarks must be [68, 2], got {target.shape}")
    normalized = np.linalg.norm(_normalize(sources) - _normalize(target)[None], axis=-1).mean(-1)  # [K]
    raw = np.linalg.norm(sources - target[None], axis=-1).mean(-1)  # [K]
    return int(np.lexsort((raw, np.round(normalized, 9)))[0])


def copy_source(source_images: np.ndarray, source_landmarks: np.ndarray, target_landmarks: np.ndarray) -> np.ndarray:
    """The copy-source baseline: the most similar source frame, unchanged. source_images [K, H, W, 3]."""
    index = most_similar_source(source_landmarks, target_landmarks)
    return np.asarray(source_images[index]).copy()


def border_points(height: int, width: int, per_side: int = 4) -> np.ndarray:
    """Fixed anchor points on the frame border: the 4 corners and ``per_side - 1`` evenly spaced points inside each
    edge. [4 * per_side, 2] float (x, y)."""
    xs = np.linspace(0, width - 1, per_side + 1)
    ys = np.linspace(0, height - 1, per_side + 1)
    top = np.stack([xs[:-1], np.zeros(per_side)], 1)
    right = np.stack([np.full(per_side, width - 1), ys[:-1]], 1)
    bottom = np.stack([xs[::-1][:-1], np.full(per_side, height - 1)], 1)
    left = np.stack([np.zeros(per_side), ys[::-1][:-1]], 1)
    return np.concatenate([top, right, bottom, left])


def _triangles(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles [M, 3] (vertex indices) of points [P, 2]; duplicate points are tolerated."""
    return Delaunay(points, qhull_options="Qbb Qc Qz Q12").simplices


def mesh_warp_image(source_image: np.ndarray, source_landmarks: np.ndarray, target_landmarks: np.ndarray,
                    border_per_side: int = 4) -> np.ndarray:
    """Piecewise-affine warp of ``source_image`` taking its landmarks to ``target_landmarks`` (same image size).

    The mesh is triangulated over the target's points (68 landmarks + border anchors), so it covers the whole
    output frame; each triangle's pixels come from the matching source triangle (bilinear, border replicated).
    """
    image = np.asarray(source_image)
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"mesh_warp_image: expected a uint8 image [H, W, C], got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    anchors = border_points(height, width, border_per_side)
    source_points = np.concatenate([np.asarray(source_landmarks, np.float64), anchors])
    target_points = np.concatenate([np.asarray(target_landmarks, np.float64), anchors])
    if source_points.shape != target_points.shape or source_points.shape[0] != 68 + len(anchors):
        raise ValueError(f"mesh_warp_image: landmarks must be [68, 2], got {np.shape(source_landmarks)} "
                         f"and {np.shape(target_landmarks)}")
    output = np.zeros_like(image)
    for triangle in _triangles(target_points):
        src = source_points[triangle].astype(np.float32)  # [3, 2]
        dst = target_points[triangle].astype(np.float32)
        # Output region: the target triangle's bounding box, clipped to the frame.
        x0, y0 = np.floor(dst.min(0)).astype(int)
        x1, y1 = np.ceil(dst.max(0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 <= x0 or y1 <= y0:
            continue
        local_dst = dst - np.array([x0, y0], np.float32)
        edges = local_dst[1:] - local_dst[0]
        if abs(edges[0, 0] * edges[1, 1] - edges[0, 1] * edges[1, 0]) < 1e-6:
            continue  # a zero-area target triangle covers no pixel of its own
        # The inverse map (box-local target pixels -> source pixels) exists for every non-degenerate target
        # triangle, even where the source triangle collapsed (e.g. three collinear brow points).
        matrix = cv2.getAffineTransform(local_dst, src)
        patch = cv2.warpAffine(image, matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(mask, np.round(local_dst * 16).astype(np.int32), 1, lineType=cv2.LINE_8, shift=4)
        region = output[y0:y1, x0:x1]
        region[mask.astype(bool)] = patch[mask.astype(bool)]
    return output


def mesh_warp(source_images: np.ndarray, source_landmarks: np.ndarray, target_landmarks: np.ndarray,
              border_per_side: int = 4) -> np.ndarray:
    """The mesh-warp baseline: the most similar source frame, warped from its landmarks to the target's."""
    index = most_similar_source(source_landmarks, target_landmarks)
    return mesh_warp_image(source_images[index], source_landmarks[index], target_landmarks, border_per_side)


BASELINES = {"copy-source": copy_source, "mesh-warp": mesh_warp}
