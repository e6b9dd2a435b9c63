"""Where the mesh stretches or folds a source: the disocclusion half of the warp family's synthesis prior (issue 25,
item 2).

The piecewise-affine mesh (`talkinghead.landmarks.mesh`) samples source k at F_k(p) for every target pixel p. Its
Jacobian J_k(p) = ∂F_k/∂p (source pixels per target pixel, 2x2) says how the source is resampled there:

    σ_min(J_k) < 1 / L     the source is magnified more than L times along some direction: what the target shows
                           there was a thin sliver in the source (a lid over an opening eye, a turned cheek, lips
                           parting), and the warp can only smear it
    det(J_k) <= 0          the triangle is flipped: the mesh folds, two target places sample one source place

The stretch of source k at p is 1 where the mesh folds, else a ramp from 0 at a magnification of L to 1 at 2L:

    stretch_k(p) = clamp((1 / σ_min(J_k(p)) − L) / L, 0, 1)
    prior(p)     = Σ_k r_k · stretch_k(p)            (r_k the rule's weights), softened by a 3x3 box filter

Like the mouth's (`talkinghead.landmarks.mouth_prior`), it comes from landmarks alone (the grids are the mesh's),
so it exists at T = 1. Magnification is measured in pixels at the grids' size, not relative to the face's scale:
the frames the warp family sees are crops of one framing (the dataset's crop, or a driver retargeted onto the
portrait), and the border anchors keep the background near the identity map. Frames above `WORK_SIZE` are read on a
coarser lattice and the prior upsampled (the same cost at 256 px as at 128: ~5 ms for 3 sources on one core).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from talkinghead.landmarks.mouth_prior import rule_weights

WORK_SIZE = 128
"""Grids larger than this are read every (H / WORK_SIZE)-th pixel and the prior is upsampled back: the mesh is
piecewise affine over triangles of several pixels, and at 256 px the full-size differences cost ~4x as much for
a prior that the box filter softens anyway."""


def grid_jacobian(grids: torch.Tensor, step: int = 1) -> torch.Tensor:
    """∂(source pixel)/∂(target pixel) of grids [..., H, W, 2] (grid_sample coordinates, align_corners=False) ->
    [..., H, W, 2, 2] (rows: source x, y; columns: target x, y), by central differences (one-sided at the edges).
    ``step``: the grids hold every step-th target pixel of a grid ``step`` times as large (pixels are measured at
    that full size)."""
    height, width = grids.shape[-3:-1]
    scale_x, scale_y = width * step / 2.0, height * step / 2.0
    pixels = torch.stack([grids[..., 0] * scale_x, grids[..., 1] * scale_y], dim=-1)  # [..., H, W, 2]
    d_dx = torch.gradient(pixels, dim=-2)[0] / step  # along x (W): [..., H, W, 2]
    d_dy = torch.gradient(pixels, dim=-3)[0] / step  # along y (H)
    return torch.stack([d_dx, d_dy], dim=-1)


def smallest_stretch(jacobian: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(σ_min, det) of 2x2 matrices [..., 2, 2]: σ_min² = (‖J‖²_F − sqrt(‖J‖⁴_F − 4 det²)) / 2."""
    a, b = jacobian[..., 0, 0], jacobian[..., 0, 1]
    c, d = jacobian[..., 1, 0], jacobian[..., 1, 1]
    det = a * d - b * c
    frobenius = a * a + b * b + c * c + d * d
    root = (frobenius * frobenius - 4 * det * det).clamp_min(0).sqrt()
    return ((frobenius - root) / 2).clamp_min(0).sqrt(), det


def stretch_prior(grids: torch.Tensor, limit: float, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The prior [B, 1, H, W] in [0, 1] (module docstring) of grids [B, K, H, W, 2] at magnification limit L > 1;
    weights [B, K] (rows summing to 1; None = the first source alone, so pass the sources nearest first)."""
    if not limit > 1:
        raise ValueError(f"the stretch prior's limit is a magnification > 1, got {limit}")
    batch, k, height, width = grids.shape[:4]
    step = max(1, min(height, width) // WORK_SIZE)
    sampled = grids[:, :, step // 2::step, step // 2::step] if step > 1 else grids
    sigma, det = smallest_stretch(grid_jacobian(sampled.to(torch.float32), step))  # [B, K, h, w]
    magnification = 1.0 / sigma.clamp_min(1e-6)
    stretch = ((magnification - limit) / limit).clamp(0, 1)
    stretch = stretch.masked_fill(det <= 0, 1.0)  # a fold: covered whatever its stretch
    weights = rule_weights(weights, batch, k, grids.device)
    prior = (weights[:, :, None, None] * stretch).sum(1, keepdim=True)  # [B, 1, h, w]
    prior = F.avg_pool2d(prior, 3, stride=1, padding=1, count_include_pad=False)
    if step > 1:
        prior = F.interpolate(prior, size=(height, width), mode="bilinear", align_corners=False)
    return prior


__all__ = ["WORK_SIZE", "grid_jacobian", "smallest_stretch", "stretch_prior"]
