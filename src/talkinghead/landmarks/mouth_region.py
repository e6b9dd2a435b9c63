"""The mouth's own source shares (issue 25, stop 37: a sharper mouth from more sources).

With T = 8 the warp family mixes the 3 nearest sources of each frame by the smooth rule (`models.source_choice`),
chosen by the distance of the WHOLE face. Three closed-mouth sources warped onto an open driver mouth stretch their
lips differently, and their mix is soft: on the validation people the T = 8 mouth was less sharp than with 2
sources (0.440 against 0.455, stop 36), while 2 sources lost whole-frame SSIM. So, with
``model.mouth_blend_power`` q > 0, the mouth region gets its own shares and the rest of the face keeps the rule's:

    d^m_k   = mouth-shape distance of source k to the driver (points 48-67, each set centred on its own mouth,
              divided by its face's RMS radius: opening and lip shape count, head position does not)
    m_k     ∝ w_k · (min_j d^m_j / d^m_k)^q,   Σ m_k = 1          (w_k the rule's shares of the N chosen sources)
    r_k(p)  = w_k + M(p) · (m_k − w_k)                             M the driver's mouth region in [0, 1]

m_k is a product of continuous functions of the landmarks and vanishes with w_k, so a source still fades in and out
of the mix without a jump (no popping); inside the mouth the source whose mouth is shaped most like the driver's
dominates (q large: one source), outside it nothing changes. M is the driver's outer-lip polygon (points 48-59)
grown about its centre by `GROW` (the mouth metric's box adds 25 % of the lips' size on each side) and feathered
over `FEATHER` px at 128, rasterized as the synthesis prior is (`landmarks.mouth_prior.polygon_mask`).

Measured on the validation people (stop 37, feed-forward, T = 8): with stop 34's weights it barely sharpens the mouth
(0.432 -> 0.434 at q = 4, 0.440 at q = 16): three closed mouths stretched open are soft whichever dominates. With
run W's sharper painted mouth it ships at q = 4 (model card, *Stop 37*).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from talkinghead.landmarks.mesh import normalized_landmarks
from talkinghead.landmarks.mouth_prior import polygon_mask

MOUTH = slice(48, 68)
"""dlib's 20 mouth points: the outer lips 48-59 and the inner lips 60-67."""
OUTER_LIPS = slice(48, 60)
GROW = 1.5
"""The outer-lip polygon scaled about its centre by this (1.5: 25 % of its size added on each side)."""
FEATHER = 2
"""The region's edge is softened over this many pixels on each side at 128 px (scaled with the frame)."""


def mouth_shape_distance(source_landmarks: np.ndarray, target_landmarks: np.ndarray) -> np.ndarray:
    """Mean distance of each source's mouth shape to the target's: [K, 68, 2], [68, 2] -> float64 [K] (module
    docstring: each mouth centred on itself, scaled by its face's RMS radius about the face's centre)."""
    sources = np.asarray(source_landmarks, dtype=np.float64)
    target = np.asarray(target_landmarks, dtype=np.float64)
    if sources.ndim != 3 or sources.shape[1:] != (68, 2) or len(sources) == 0:
        raise ValueError(f"source_landmarks must be [K >= 1, 68, 2], got {sources.shape}")
    if target.shape != (68, 2):
        raise ValueError(f"target_landmarks must be [68, 2], got {target.shape}")

    def shape(points: np.ndarray) -> np.ndarray:  # the face's position and scale removed, then the mouth's position
        mouth = normalized_landmarks(points)[..., MOUTH, :]
        return mouth - mouth.mean(-2, keepdims=True)

    return np.linalg.norm(shape(sources) - shape(target)[None], axis=-1).mean(-1)


def mouth_shares(weights: np.ndarray, mouth_distances: np.ndarray, power: float) -> np.ndarray:
    """The mouth region's shares of the N chosen sources: m_k ∝ w_k · (min_j d^m_j / d^m_k)^q (module docstring).
    weights [N] (the rule's, summing to 1), mouth_distances [N] -> float32 [N] summing to 1; q = 0 gives ``weights``."""
    weights = np.asarray(weights, dtype=np.float64)
    distances = np.asarray(mouth_distances, dtype=np.float64) + 1e-6  # a mouth identical to the driver's: finite
    if weights.shape != distances.shape or weights.ndim != 1:
        raise ValueError(f"mouth_shares: weights {weights.shape} and mouth distances {distances.shape} must both "
                         "be [N]")
    if power < 0:
        raise ValueError(f"model.mouth_blend_power must be >= 0, got {power}")
    shares = weights * (distances.min() / distances) ** power
    if shares.sum() <= 0:
        raise ValueError("mouth_shares: the rule's weights are all 0")
    return (shares / shares.sum()).astype(np.float32)


def mouth_region(target_points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[B, 68, 2] driver landmarks in pixels at this size -> [B, 1, H, W] in [0, 1]: the grown outer-lip polygon,
    feathered (module docstring)."""
    lips = target_points[:, OUTER_LIPS].to(torch.float32)  # [B, 12, 2]
    centre = lips.mean(1, keepdim=True)
    region = polygon_mask(centre + GROW * (lips - centre), height, width)
    radius = max(1, round(FEATHER * height / 128))
    return F.avg_pool2d(region, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)


def regional_weights(weights: torch.Tensor, mouth: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Per-pixel shares r_k(p) = w_k + M(p) (m_k − w_k): weights and mouth [B, K], region [B, 1, H, W] ->
    [B, K, H, W], each pixel's shares summing to 1."""
    return weights[:, :, None, None] + region * (mouth - weights)[:, :, None, None]


def mouth_source_weights(target_points: np.ndarray, source_points: np.ndarray, weights: np.ndarray, power: float,
                         size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Everything the mouth's shares need, for a batch: target_points [B, 68, 2] and source_points [B, N, 68, 2]
    (the N chosen sources, pixels at ``size``), weights [B, N] (the rule's) -> (per-pixel shares [B, N, S, S] for
    `WarpSources.weights`, the mouth's shares [B, N] for the synthesis prior, whose mouth lies inside the region)."""
    targets = np.asarray(target_points, np.float32)
    sources = np.asarray(source_points, np.float32)
    mouth = np.stack([mouth_shares(w, mouth_shape_distance(s, t), power)
                      for t, s, w in zip(targets, sources, weights, strict=True)])
    rule, mouth_only = torch.from_numpy(np.asarray(weights, np.float32)), torch.from_numpy(mouth)
    region = mouth_region(torch.from_numpy(targets), size, size)
    return regional_weights(rule, mouth_only, region), mouth_only


__all__ = ["FEATHER", "GROW", "mouth_region", "mouth_shape_distance", "mouth_shares", "mouth_source_weights",
           "regional_weights"]
