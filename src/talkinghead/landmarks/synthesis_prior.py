"""The warp family's synthesis prior: where no source shows what the driver needs (issue 25, item 2).

    prior(p) = max(mouth(p), stretch(p), lids(p))

``mouth``: the driver's inner mouth that no warped source mouth covers (`talkinghead.landmarks.mouth_prior`).
``stretch``: where the mesh magnifies a source past ``model.stretch_limit`` or folds it
(`talkinghead.landmarks.stretch_prior`; off at limit 0). ``lids``: the driver's shut eye where the sources' are open
(`talkinghead.landmarks.lid_prior`; with ``lids=True``). All come from landmarks and the mesh grids alone, so the
prior exists at T = 1; the data loader, fine-tuning and inference all build it here, with the same arguments.

With ``parts=True`` the three are returned apart, [B, 3, H, W] in `PRIOR_PARTS` order (a part that is off is 0):
what ``model.prior_input`` shows the synthesis branch, so it can tell a mouth to paint from a lid (stop 34 saw lip
colours painted into shut eyes by a branch that could not).
"""

from __future__ import annotations

import torch

from talkinghead.landmarks.lid_prior import lid_prior
from talkinghead.landmarks.mouth_prior import mouth_prior
from talkinghead.landmarks.stretch_prior import stretch_prior

PRIOR_PARTS = ("mouth", "stretch", "lids")
"""The channels of ``synthesis_prior(..., parts=True)``."""


def synthesis_prior(target_points: torch.Tensor, source_points: torch.Tensor, grids: torch.Tensor,
                    weights: torch.Tensor | None = None, stretch_limit: float = 0.0,
                    lids: bool = False, parts: bool = False) -> torch.Tensor:
    """The prior [B, 1, H, W] in [0, 1] (with ``parts``: its parts [B, 3, H, W], `PRIOR_PARTS`). target_points
    [B, 68, 2], source_points [B, K, 68, 2] (pixels at the grids' size), grids [B, K, H, W, 2] (the mesh grid from
    the target to each source), weights [B, K] (the rule's share of each source; None = the first alone),
    stretch_limit (0 = no stretch prior), lids (the lid prior too)."""
    mouth = mouth_prior(target_points, source_points, grids, weights)
    stretch = stretch_prior(grids, stretch_limit, weights) if stretch_limit else torch.zeros_like(mouth)
    shut = (lid_prior(target_points, source_points, grids.shape[2], grids.shape[3], weights) if lids
            else torch.zeros_like(mouth))
    if parts:
        return torch.cat([mouth, stretch, shut], 1)
    return torch.maximum(torch.maximum(mouth, stretch), shut)


__all__ = ["PRIOR_PARTS", "synthesis_prior"]
