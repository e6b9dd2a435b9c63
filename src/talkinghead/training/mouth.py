"""The mouth's own training terms (issue 25, item 3): a lip discriminator, mouth-crop L1, and the warm-up ramp.

Meta-learning (`training.loop`) adds, when their weights are > 0 (`LossConfig`):

    D_lip update  hinge loss on mouth crops of (x, x̂.detach()) with their landmark-image crops   (beside Eq. 6)
    G terms       mouth_pixel          = mean |crop(x̂) − crop(x)|
                  lip_adversarial      = −mean D_lip(crop(x̂))
                  lip_feature_matching = mean over D_lip's blocks of mean |D_lip_k(crop(x̂)) − D_lip_k(crop(x))|
                  flow_smoothness      = TV of the warp generator's residual flow, in pixels

The crops follow the TARGET's landmarks (`mouth_crops`): real and generated mouths are cut from the same box.
D_lip has its own Adam (``train.lr_lip_discriminator``, default the discriminator's rate; the same betas) and, like
D, is updated with x̂ detached and frozen during G's update (no summed G + D loss), through the same
`training.steps.Phase` (gradients averaged over ranks, the non-finite guard on every rank, its own gradient scaler).

A history of past mouths (``train.lip_pool_size`` > 0; stop 29): with 4 episodes per step D_lip saw 4 real and 4
generated mouths per update, half of them from random episodes where the warp already shows the true mouth, and
its scores for real and generated crops moved together (training hinge 1.9-2.0 of 2.0, validation AUC 0.50-0.55).
Each update now also scores up to ``POOL_DRAW`` × B (real, generated) pairs drawn from the last ``lip_pool_size``
steps' crops (the "image history" idea of Shrivastava et al. 2017, here for both sides so that the two stay
balanced), so D_lip learns from many mouths and cannot be led round in circles by G's latest change. The pool
is part of the training checkpoint, so a resume continues it exactly.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from talkinghead import losses
from talkinghead.models.lip_discriminator import LipDiscriminator, crop_size_for, mouth_crops
from talkinghead.training.distributed import World, all_finite
from talkinghead.training.steps import Phase

POOL_DRAW = 3
"""Pairs drawn from the mouth pool per D_lip update, per episode of the batch."""


def adversarial_ramp(step: int, warmup: int, ramp: int) -> float:
    """The adversarial terms' weight factor at ``step`` (steps of this run): 0 during ``warmup``, then linear to 1
    over ``ramp`` steps (1 at once when ramp is 0)."""
    if step < warmup:
        return 0.0
    if ramp <= 0:
        return 1.0
    return min(1.0, (step - warmup + 1) / ramp)


def flow_total_variation(residual_flow: torch.Tensor) -> torch.Tensor:
    """Mean |∂ΔF/∂x| + |∂ΔF/∂y| of residual_flow [B, K, H, W, 2] (grid units, 2/W per pixel), in pixels."""
    width = residual_flow.shape[-2]
    pixels = residual_flow * (width / 2.0)
    dx = (pixels[:, :, :, 1:] - pixels[:, :, :, :-1]).abs().mean()
    dy = (pixels[:, :, 1:] - pixels[:, :, :-1]).abs().mean()
    return dx + dy


class MouthCritic:
    """The lip discriminator, its optimizer, and the mouth terms of G's loss."""

    def __init__(self, image_size: int, lr: float, betas: tuple[float, float], device: torch.device,
                 fp16: bool = False, pool_size: int = 0) -> None:
        self.crop_size = crop_size_for(image_size)
        self.pool_size = pool_size
        # The pool: (real mouth, generated mouth, landmark-image mouth) crops [P, 3, S, S] each, filled in order,
        # then a random slot replaced per new pair; ``pool_count`` pairs stored so far (<= pool_size).
        shape = (pool_size, 3, self.crop_size, self.crop_size)
        self.pool = {name: torch.zeros(shape, device=device) for name in ("real", "fake", "drawn")}
        self.pool_count = 0
        self.discriminator = LipDiscriminator(self.crop_size).to(device).train()
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas)
        self.phase = Phase(list(self.discriminator.parameters()), self.optimizer,
                           torch.amp.GradScaler(device.type, enabled=fp16))

    def crops(self, images: torch.Tensor, landmark_images: torch.Tensor,
              landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (mouth_crops(images, landmarks, self.crop_size),
                mouth_crops(landmark_images, landmarks, self.crop_size).detach())

    def discriminator_update(self, real: torch.Tensor, fake: torch.Tensor, landmark_images: torch.Tensor,
                             landmarks: torch.Tensor, world: World | None = None) -> dict[str, torch.Tensor] | None:
        """One D_lip update on the hinge loss; ``fake`` detached. None (and no update) when it is not finite."""
        if fake.requires_grad:
            raise ValueError("the lip discriminator's update needs x̂.detach()")
        batch = real.shape[0]
        mouths, drawn = self.crops(torch.cat([real, fake]), torch.cat([landmark_images, landmark_images]),
                                   torch.cat([landmarks, landmarks]))
        real_mouths, fake_mouths, drawn = mouths[:batch], mouths[batch:], drawn[:batch]
        past = self.draw(POOL_DRAW * batch)
        if past is not None:
            real_mouths = torch.cat([real_mouths, past["real"]])
            fake_mouths = torch.cat([fake_mouths, past["fake"]])
            drawn = torch.cat([drawn, past["drawn"]])
        count = real_mouths.shape[0]
        scores, _ = self.discriminator(torch.cat([real_mouths, fake_mouths]), torch.cat([drawn, drawn]))
        hinge = losses.discriminator_hinge_loss(real_score=scores[:count], fake_score=scores[count:])
        world = world or World()
        if not all_finite(hinge["total"], world):
            return None
        self.phase.apply(hinge["total"], world, rows=False)
        return {"loss/lip_discriminator": hinge["total"].detach(), "score/lip_real": scores[:batch].mean().detach(),
                "score/lip_fake": scores[count:count + batch].mean().detach()}

    def draw(self, wanted: int) -> dict[str, torch.Tensor] | None:
        """Up to ``wanted`` random pairs from the pool (without repeats), or None when it is empty or off."""
        if self.pool_count == 0 or wanted <= 0:
            return None
        picks = torch.randperm(self.pool_count)[:wanted].to(self.pool["real"].device)
        return {name: stored[picks] for name, stored in self.pool.items()}

    @torch.no_grad()
    def remember(self, real: torch.Tensor, fake: torch.Tensor, landmark_images: torch.Tensor,
                 landmarks: torch.Tensor) -> None:
        """Put this step's (real, generated) mouth pairs into the pool (once per step, after the D updates)."""
        if self.pool_size == 0:
            return
        mouths, drawn = self.crops(torch.cat([real, fake]), torch.cat([landmark_images, landmark_images]),
                                   torch.cat([landmarks, landmarks]))
        batch = real.shape[0]
        for i in range(batch):
            if self.pool_count < self.pool_size:
                slot = self.pool_count
                self.pool_count += 1
            else:
                slot = int(torch.randint(self.pool_size, ()))
            self.pool["real"][slot] = mouths[i]
            self.pool["fake"][slot] = mouths[batch + i]
            self.pool["drawn"][slot] = drawn[i]

    def pool_state(self) -> dict[str, torch.Tensor]:
        """The pool's filled part, for the training checkpoint (empty when the pool is off)."""
        if self.pool_size == 0:
            return {}
        return {name: stored[:self.pool_count].detach().cpu().clone() for name, stored in self.pool.items()}

    def load_pool_state(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Refill the pool from `pool_state`'s tensors (a checkpoint without them, or a smaller pool: empty/cut)."""
        self.pool_count = 0
        if self.pool_size == 0 or "real" not in tensors:
            return
        count = min(self.pool_size, tensors["real"].shape[0])
        for name, stored in self.pool.items():
            stored[:count] = tensors[name][:count].to(stored.device)
        self.pool_count = count

    def generator_terms(self, generated: torch.Tensor, real: torch.Tensor, landmark_images: torch.Tensor,
                        landmarks: torch.Tensor, weights: Mapping[str, float]) -> dict[str, torch.Tensor]:
        """The mouth terms of G's loss (unweighted), those with a weight > 0; D_lip frozen."""
        batch = generated.shape[0]
        mouths, drawn = self.crops(torch.cat([generated, real.detach()]),
                                   torch.cat([landmark_images, landmark_images]), torch.cat([landmarks, landmarks]))
        terms: dict[str, torch.Tensor] = {}
        if weights.get("mouth_pixel", 0) > 0:
            terms["mouth_pixel"] = (mouths[:batch] - mouths[batch:]).abs().mean()
        if weights.get("lip_adversarial", 0) > 0 or weights.get("lip_feature_matching", 0) > 0:
            self.discriminator.requires_grad_(False)
            try:
                scores, features = self.discriminator(mouths, drawn)
            finally:
                self.discriminator.requires_grad_(True)
            terms["lip_adversarial"] = losses.adversarial_loss(scores[:batch])
            terms["lip_feature_matching"] = losses.feature_matching_loss([f[:batch] for f in features],
                                                                         [f[batch:] for f in features])
        return terms


__all__ = ["POOL_DRAW", "MouthCritic", "adversarial_ramp", "flow_total_variation"]
