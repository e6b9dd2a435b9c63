"""Baselines every evaluation report carries (issue 6): a model must beat these to be worth its training.

* ``copy_source``: the source frame whose landmarks are most similar to the target's (normalized landmark distance:
  position and scale removed, so pose and expression count), returned unchanged.
* ``mesh_warp``: the most similar source frame, warped piecewise-affinely from its landmarks to the target's over a
  Delaunay triangulation of the 68 points plus fixed points on the frame border (corners and edge points, which
  keep the background in place). The mesh is `talkinghead.landmarks.mesh`: `sampling_grid` (the same backward
  grid the warp-guided generator and its episodes use) sampled by `warp_image` (bilinear, border replicated).

Images are uint8 RGB ``[H, W, 3]``; landmarks float ``[68, 2]`` (x, y) pixels; sources ``[K, ...]``.
"""

from __future__ import annotations

import numpy as np

from talkinghead.landmarks.mesh import (
    BORDER_PER_SIDE,
    border_points,
    normalized_landmark_distance,
    sampling_grid,
    warp_image,
)

__all__ = ["BASELINES", "border_points", "copy_source", "mesh_warp", "mesh_warp_image", "most_similar_source"]


def most_similar_source(source_landmarks: np.ndarray, target_landmarks: np.ndarray) -> int:
    """Index of the source frame most similar to the target: the smallest mean normalized landmark distance,
    ties broken by the raw pixel distance (so a source frame equal to the target always wins)."""
    normalized = normalized_landmark_distance(source_landmarks, target_landmarks)  # [K]
    sources = np.asarray(source_landmarks, dtype=np.float64)
    target = np.asarray(target_landmarks, dtype=np.float64)
    raw = np.linalg.norm(sources - target[None], axis=-1).mean(-1)  # [K]
    return int(np.lexsort((raw, np.round(normalized, 9)))[0])


def copy_source(source_images: np.ndarray, source_landmarks: np.ndarray, target_landmarks: np.ndarray) -> np.ndarray:
    """The copy-source baseline: the most similar source frame, unchanged. source_images [K, H, W, 3]."""
    index = most_similar_source(source_landmarks, target_landmarks)
    return np.asarray(source_images[index]).copy()


def mesh_warp_image(source_image: np.ndarray, source_landmarks: np.ndarray, target_landmarks: np.ndarray,
                    border_per_side: int = BORDER_PER_SIDE) -> np.ndarray:
    """Piecewise-affine warp of ``source_image`` taking its landmarks to ``target_landmarks`` (same image size).

    The mesh is triangulated over the target's points (68 landmarks + border anchors), so it covers the whole
    output frame; each triangle's pixels come from the matching source triangle (bilinear, border replicated).
    """
    image = np.asarray(source_image)
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"mesh_warp_image: expected a uint8 image [H, W, C], got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    return warp_image(image, sampling_grid(source_landmarks, target_landmarks, (height, width), border_per_side))


def mesh_warp(source_images: np.ndarray, source_landmarks: np.ndarray, target_landmarks: np.ndarray,
              border_per_side: int = BORDER_PER_SIDE) -> np.ndarray:
    """The mesh-warp baseline: the most similar source frame, warped from its landmarks to the target's."""
    index = most_similar_source(source_landmarks, target_landmarks)
    return mesh_warp_image(source_images[index], source_landmarks[index], target_landmarks, border_per_side)


BASELINES = {"copy-source": copy_source, "mesh-warp": mesh_warp}
