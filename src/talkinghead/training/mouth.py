"""The mouth's own training terms (issue 25, item 3): a lip discriminator, mouth-crop L1, and the warm-up ramp.

Meta-learning (`training.loop`) adds, when their weights are > 0 (`LossConfig`):

    D_lip update  hinge loss on mouth crops of (x, x̂.detach()) with their landmark-image crops   (beside Eq. 6)
    G terms       mouth_pixel          = mean |crop(x̂) − crop(x)|
                  lip_adversarial      = −mean D_lip(crop(x̂))
                  lip_feature_matching = mean over D_lip's blocks of mean |D_lip_k(crop(x̂)) − D_lip_k(crop(x))|
                  flow_smoothness      = TV of the warp generator's residual flow, in pixels

The crops follow the TARGET's landmarks (`mouth_crops`): real and generated mouths are cut from the same box.
D_lip has its own Adam (the discriminator's learning rate and betas) and, like D, is updated with x̂ detached and
frozen during G's update (no summed G + D loss), through the same `training.steps.Phase` (gradients averaged over
ranks, the non-finite guard on every rank, its own gradient scaler).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from talkinghead import losses
from talkinghead.models.lip_discriminator import LipDiscriminator, crop_size_for, mouth_crops
from talkinghead.training.distributed import World, all_finite
from talkinghead.training.steps import Phase


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
                 fp16: bool = False) -> None:
        self.crop_size = crop_size_for(image_size)
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
        scores, _ = self.discriminator(mouths, drawn)
        hinge = losses.discriminator_hinge_loss(real_score=scores[:batch], fake_score=scores[batch:])
        world = world or World()
        if not all_finite(hinge["total"], world):
            return None
        self.phase.apply(hinge["total"], world, rows=False)
        return {"loss/lip_discriminator": hinge["total"].detach(), "score/lip_real": scores[:batch].mean().detach(),
                "score/lip_fake": scores[batch:].mean().detach()}

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


__all__ = ["MouthCritic", "adversarial_ramp", "flow_total_variation"]
