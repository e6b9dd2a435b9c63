"""Where the driver's eye is shut and the sources' open: the lid half of the warp family's synthesis prior (issue 25,
item 7).

The piecewise-affine mesh maps the driver's eye polygon (dlib points 36-41, 42-47) onto each source's. When the
driver blinks and a source's eye is open, the mesh squeezes that source's whole open eye (white, iris, pupil) into
the driver's thin lid line and stretches the source's narrow visible lid over the rest: a squashed eye, not a lid.
Neither the mouth's prior (`talkinghead.landmarks.mouth_prior`) nor the stretch prior covers it: the eye's
triangles shrink rather than magnify, and the lid's triangles reach up to the brow, so their stretch stays small.

So, per eye and source k, with the eye aspect ratio a (`metrics.eyes.eye_openness`, one eye at a time):

    closure_k    = clamp((LID_START − a_target / a_k) / (LID_START − LID_FULL), 0, 1)
                   0 while the driver's eye is at least LID_START of the source's, 1 at LID_FULL or less
    open_eye_k   = source k's eye polygon, carried onto the target by the similarity that maps its eye corners
                   (points 36, 39 or 42, 45) onto the target's: where source k's open eye would lie in the target
    prior(p)     = Σ_eyes Σ_k r_k · closure_k · [open_eye_k, dilated by `LASH_MARGIN` of the eye's width](p)
                   (r_k the rule's weights), softened by a 3x3 box filter

In the target every pixel of that region is lid or lashes, which no warped source shows. Like the mouth's prior it
comes from landmarks alone, so it exists at T = 1 (an open-eyed portrait driven through a blink), and it is 0 when
some source with the rule's weight shows the eye as shut as the driver's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from talkinghead.landmarks.mouth_prior import polygon_mask, rule_weights

EYES = (slice(36, 42), slice(42, 48))
"""dlib's 6 points of each eye, in order around it: outer corner, two upper-lid points, inner corner, two lower-lid
points (the right eye first, as seen in the image: the person's right)."""
LID_START = 0.7
"""The driver's eye aspect ratio over the source's at which the prior starts (smaller: more closed than the
source's). `metrics.eyes` counts a frame as blinking under 0.5 of its video's median and as open over 0.9: a blink
against an open source is a ratio under 0.56."""
LID_FULL = 0.4
"""The ratio at which the prior is 1 (the eye shut against an open source)."""
LASH_MARGIN = 0.12
"""The open-eye region is dilated by this share of the eye's width (lashes and the lid's edge; ~1.5 px at 128)."""


def eye_aspect_ratio(points: torch.Tensor) -> torch.Tensor:
    """The eye aspect ratio of one eye's 6 points [..., 6, 2] (Soukupová and Čech): (|p1 − p5| + |p2 − p4|) /
    (2 |p0 − p3|) -> [...]."""
    vertical = ((points[..., 1, :] - points[..., 5, :]).norm(dim=-1)
                + (points[..., 2, :] - points[..., 4, :]).norm(dim=-1))
    return vertical / (2 * (points[..., 0, :] - points[..., 3, :]).norm(dim=-1).clamp_min(1e-6))


def closure(target_ratio: torch.Tensor, source_ratio: torch.Tensor) -> torch.Tensor:
    """How far the driver's eye is shut against a source's, from their aspect ratios (broadcast): 0 at LID_START of
    the source's or more, 1 at LID_FULL or less."""
    relative = target_ratio / source_ratio.clamp_min(1e-6)
    return ((LID_START - relative) / (LID_START - LID_FULL)).clamp(0, 1)


def _complex(points: torch.Tensor) -> torch.Tensor:
    return torch.complex(points[..., 0].to(torch.float64), points[..., 1].to(torch.float64))


def eye_onto_target(source_eye: torch.Tensor, target_eye: torch.Tensor) -> torch.Tensor:
    """Source eye polygons [..., 6, 2] carried by the similarity (rotation, scale, shift) that maps their corners
    (points 0 and 3) onto the target eyes' [..., 6, 2] corners -> [..., 6, 2] in the target's pixels."""
    src, dst = _complex(source_eye), _complex(target_eye)
    src_axis = src[..., 3] - src[..., 0]
    scale = (dst[..., 3] - dst[..., 0]) / torch.where(src_axis.abs() < 1e-6, torch.ones_like(src_axis), src_axis)
    moved = dst[..., :1] + (src - src[..., :1]) * scale[..., None]
    return torch.stack([moved.real, moved.imag], dim=-1).to(torch.float32)


def lid_prior(target_points: torch.Tensor, source_points: torch.Tensor, height: int, width: int,
              weights: torch.Tensor | None = None) -> torch.Tensor:
    """The prior [B, 1, H, W] in [0, 1] (module docstring). target_points [B, 68, 2] and source_points [B, K, 68, 2]
    in pixels of an H x W frame; weights [B, K] (the rule's share of each source, rows summing to 1; None = the first
    source alone, so pass the sources nearest first)."""
    batch, k = source_points.shape[:2]
    weights = rule_weights(weights, batch, k, source_points.device)  # [B, K]
    prior = torch.zeros(batch, 1, height, width, dtype=torch.float32, device=source_points.device)
    for eye in EYES:
        target_eye = target_points[:, eye].to(torch.float32)  # [B, 6, 2]
        source_eye = source_points[:, :, eye].to(torch.float32)  # [B, K, 6, 2]
        share = weights * closure(eye_aspect_ratio(target_eye)[:, None], eye_aspect_ratio(source_eye))  # [B, K]
        if not bool((share > 0).any()):
            continue
        region = eye_onto_target(source_eye, target_eye[:, None].expand_as(source_eye))  # [B, K, 6, 2]
        centre = region.mean(-2, keepdim=True)
        width_px = (target_eye[:, 3] - target_eye[:, 0]).norm(dim=-1)[:, None, None, None]  # [B, 1, 1, 1]
        offset = region - centre
        # dilate: every vertex moves out from the centre by the margin (a convex-enough hexagon grows by ~the margin)
        region = centre + offset * (1 + LASH_MARGIN * width_px / offset.norm(dim=-1, keepdim=True).clamp_min(1e-6))
        masks = polygon_mask(region.flatten(0, 1), height, width).unflatten(0, (batch, k))  # [B, K, 1, H, W]
        prior = prior + (share[:, :, None, None, None] * masks).sum(1)
    return F.avg_pool2d(prior.clamp(0, 1), 3, stride=1, padding=1, count_include_pad=False)


__all__ = ["EYES", "LASH_MARGIN", "LID_FULL", "LID_START", "closure", "eye_aspect_ratio", "eye_onto_target",
           "lid_prior"]
