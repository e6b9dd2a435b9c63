"""Baselines every evaluation report carries (issue 6): a model must beat these to be worth its training.

* ``copy_source``: the source frame whose landmarks are most similar to the target's (normalized landmark distance:
  position and scale removed, so pose and expression count), returned unchanged.
* ``mesh_warp``: the most similar source frame, warped piecewise-affinely from its landmarks to the target's over a
  Delaunay triangulation of the 68 points plus fixed points on the frame border (corners and edge points, which
  keep the background in place). The mesh is `talkinghead.landmarks.mesh`: `sampling_grid` (the same backward
  grid the warp-guided generator and its episodes use) sampled by `warp_image` (bilinear, border replicated).

Two more baselines expose smoothing (issue 24): per-frame SSIM rewards blur, and on 3 held-out clips a Gaussian blur
of the mesh warp matched the shipped model's SSIM gain over it. A model's gain that these reach without learning is
not a learning gain.

* ``mesh_warp_blur``: the mesh warp, blurred with a Gaussian of ``BLUR_SIGMA`` = 0.5 px.
* ``fixed_blend``: the mesh warps of the two most similar source frames mixed with fixed weights
  (``BLEND_WEIGHT`` = 0.95 for the nearest, 0.05 for the second), as the warp family mixes its 2 nearest sources but
  with nothing learned; with one source it is the mesh warp.

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

__all__ = ["BASELINES", "BLEND_WEIGHT", "BLUR_SIGMA", "border_points", "copy_source", "fixed_blend", "mesh_warp",
           "mesh_warp_blur", "mesh_warp_image", "most_similar_source", "nearest_sources"]

BLUR_SIGMA = 0.5
"""The mesh-warp + blur baseline's Gaussian sigma in pixels (at the evaluated size)."""
BLEND_WEIGHT = 0.95
"""The fixed blend's weight on the nearest source's warp (the second nearest gets the rest)."""


def most_similar_source(source_landmarks: np.ndarray, target_landmarks: np.ndarray) -> int:
    """Index of the source frame most similar to the target: the smallest mean normalized landmark distance,
    ties broken by the raw pixel distance (so a source frame equal to the target always wins)."""
    return nearest_sources(source_landmarks, target_landmarks, 1)[0]


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


def nearest_sources(source_landmarks: np.ndarray, target_landmarks: np.ndarray, count: int) -> list[int]:
    """Indices of the ``count`` source frames most similar to the target, nearest first (the order of
    `most_similar_source`: normalized landmark distance, then raw distance)."""
    normalized = normalized_landmark_distance(source_landmarks, target_landmarks)  # [K]
    raw = np.linalg.norm(np.asarray(source_landmarks, np.float64) - np.asarray(target_landmarks, np.float64)[None],
                         axis=-1).mean(-1)
    return [int(i) for i in np.lexsort((raw, np.round(normalized, 9)))[:count]]


def mesh_warp_blur(source_images: np.ndarray, source_landmarks: np.ndarray, target_landmarks: np.ndarray,
                   sigma: float = BLUR_SIGMA) -> np.ndarray:
    """The mesh warp, blurred by a Gaussian of ``sigma`` pixels (kernel to 3 sigma each side; reflected border)."""
    import cv2

    warped = mesh_warp(source_images, source_landmarks, target_landmarks)
    radius = max(1, int(np.ceil(3 * sigma)))
    return cv2.GaussianBlur(warped, (2 * radius + 1, 2 * radius + 1), sigmaX=sigma, sigmaY=sigma,
                            borderType=cv2.BORDER_REFLECT_101)


def fixed_blend(source_images: np.ndarray, source_landmarks: np.ndarray, target_landmarks: np.ndarray,
                weight: float = BLEND_WEIGHT) -> np.ndarray:
    """``weight`` x the nearest source's mesh warp + (1 - ``weight``) x the second nearest's (rounded to uint8)."""
    chosen = nearest_sources(source_landmarks, target_landmarks, 2)
    warps = [mesh_warp_image(source_images[i], source_landmarks[i], target_landmarks).astype(np.float64)
             for i in chosen]
    if len(warps) == 1:
        return warps[0].astype(np.uint8)
    mixed = weight * warps[0] + (1.0 - weight) * warps[1]
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


MESH_WARP_BLUR = "mesh-warp+blur"
FIXED_BLEND = "fixed-blend"
BASELINES = {"copy-source": copy_source, "mesh-warp": mesh_warp, MESH_WARP_BLUR: mesh_warp_blur,
             FIXED_BLEND: fixed_blend}
