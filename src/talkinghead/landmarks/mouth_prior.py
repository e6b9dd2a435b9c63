"""Where no source shows what the driver needs: the synthesis prior of the warp family (issue 25, item 2).

The piecewise-affine mesh maps the driver's inner-lip polygon (dlib points 60-67) onto each source's. A source
whose mouth is open supplies an interior there (teeth, tongue, the dark cavity); a closed source mouth is a line,
and the mesh stretches the lips over the driver's open mouth: the red smear of the warp. So, per pixel of the
target frame:

    target(p) = 1 inside the driver's inner-lip polygon
    shown(p)  = Σ_k r_k · [source k's inner-lip polygon] ∘ F_k (p)     (r_k the rule's weights, F_k the mesh grid)
    prior(p)  = clamp(target(p) − shown(p), 0, 1), softened by a 3x3 box filter

It is computed from landmarks alone, so it exists at T = 1 (a closed-mouth portrait driven open: prior = the
driver's inner mouth). With ``model.synthesis_prior`` the generator's blend starts on its synthesis branch there,
and training weights those pixels (`talkinghead.training.mouth`).

Polygons are rasterized in torch at pixel centres (pixel (x, y) has its centre at (x, y): the landmark
convention of `talkinghead.data.episodes`), by the crossing-number test: no OpenCV, the same code in the data
loader, in fine-tuning and at inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

INNER_MOUTH = slice(60, 68)
"""dlib's 8 inner-lip points, in order around the mouth."""


def polygon_mask(polygons: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[N, P, 2] polygons in pixel coordinates -> [N, 1, H, W] float, 1 where a pixel centre is inside
    (crossing-number rule; a degenerate polygon such as a closed mouth's covers almost nothing)."""
    polygons = polygons.to(torch.float32)
    out = torch.zeros(polygons.shape[0], 1, height, width, dtype=torch.float32, device=polygons.device)
    if polygons.numel() == 0:
        return out
    # Only the window around every polygon can be inside (a mouth is ~2 % of the frame: ~20x faster per frame).
    low = polygons.reshape(-1, 2).amin(0).floor().clamp_min(0)
    high = polygons.reshape(-1, 2).amax(0).ceil()
    x0, y0 = int(low[0]), int(low[1])
    x1, y1 = min(int(high[0]) + 1, width), min(int(high[1]) + 1, height)
    if x1 <= x0 or y1 <= y0:
        return out
    ys = torch.arange(y0, y1, dtype=torch.float32, device=polygons.device)[None, :, None]  # [1, h, 1]
    xs = torch.arange(x0, x1, dtype=torch.float32, device=polygons.device)[None, None, :]  # [1, 1, w]
    inside = torch.zeros(polygons.shape[0], y1 - y0, x1 - x0, dtype=torch.bool, device=polygons.device)
    count = polygons.shape[1]
    for i in range(count):
        a, b = polygons[:, i], polygons[:, (i + 1) % count]  # [N, 2]
        ax, ay = a[:, 0, None, None], a[:, 1, None, None]
        bx, by = b[:, 0, None, None], b[:, 1, None, None]
        straddles = (ay > ys) != (by > ys)  # [N, H, 1]
        dy = torch.where(by == ay, torch.ones_like(by), by - ay)
        crossing_x = ax + (ys - ay) * (bx - ax) / dy  # [N, H, 1]
        inside ^= straddles & (xs < crossing_x)
    out[:, 0, y0:y1, x0:x1] = inside.to(torch.float32)
    return out


def rule_weights(weights: torch.Tensor | None, batch: int, k: int, device: torch.device) -> torch.Tensor:
    """The rule's share of each source, [B, K] float32: ``weights`` as given, or None = the first source alone (the
    priors' callers pass the sources nearest first)."""
    if weights is None:
        weights = torch.zeros(batch, k, device=device)
        weights[:, 0] = 1.0
    return weights.to(torch.float32)


def mouth_prior(target_points: torch.Tensor, source_points: torch.Tensor, grids: torch.Tensor,
                weights: torch.Tensor | None = None) -> torch.Tensor:
    """The prior [B, 1, H, W] in [0, 1] (module docstring).

    target_points [B, 68, 2] and source_points [B, K, 68, 2] in pixels at the grids' size; grids [B, K, H, W, 2]
    (the mesh grid from the target to each source, grid_sample coordinates, align_corners=False); weights [B, K]
    (the rule's share of each source, rows summing to 1; None = the first source alone, so pass the sources
    nearest first)."""
    batch, k, height, width = grids.shape[:4]
    target = polygon_mask(target_points[:, INNER_MOUTH], height, width)  # [B, 1, H, W]
    source_masks = polygon_mask(source_points[:, :, INNER_MOUTH].flatten(0, 1), height, width)  # [B*K, 1, H, W]
    warped = F.grid_sample(source_masks, grids.flatten(0, 1).to(torch.float32), mode="bilinear",
                           padding_mode="zeros", align_corners=False).unflatten(0, (batch, k))  # [B, K, 1, H, W]
    weights = rule_weights(weights, batch, k, grids.device)
    shown = (weights[:, :, None, None, None] * warped).sum(1)  # [B, 1, H, W]
    prior = (target - shown).clamp(0, 1)
    return F.avg_pool2d(prior, 3, stride=1, padding=1, count_include_pad=False)


__all__ = ["INNER_MOUTH", "mouth_prior", "polygon_mask", "rule_weights"]
