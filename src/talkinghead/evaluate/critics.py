"""Is the adversarial term alive? The discriminators' scores on real and generated frames of unseen people.

A discriminator whose scores do not separate real frames from the generator's cannot steer it (issue 25: at the
stop-23 weights |∂r̂/∂x̂| was 5·10⁻⁶ and the hinge term's gradient on G 10⁻⁴ of the pixel term's). So, on the
frames `talkinghead evaluate` scores, each discriminator scores the real target frame and the avatar's rendering of
its landmarks, and the AUC is the probability that a random real frame scores above a random generated one
(Mann-Whitney; ties count one half): 0.5 = no separation, 1 = perfect.

* ``projection``: the paper's D (Eq. 5) as fine-tuning starts it for a new person, r = V(x, y)ᵀ(w0 + ê_NEW) + b,
  with ê_NEW the mean embedding of the T source frames (Eq. 7).
* ``lip``: the lip discriminator (`models.lip_discriminator`), on the mouth crops of the target's landmarks; only
  for an export that carries one (``lip_discriminator.*`` tensors, models trained with ``loss.lip_adversarial_weight``
  > 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn


def auc(real: np.ndarray, fake: np.ndarray) -> float | None:
    """P(a real score > a generated score) + ½ P(equal): the Mann-Whitney AUC; None without both kinds."""
    real, fake = np.asarray(real, np.float64).ravel(), np.asarray(fake, np.float64).ravel()
    if real.size == 0 or fake.size == 0:
        return None
    greater = (real[:, None] > fake[None, :]).sum()
    equal = (real[:, None] == fake[None, :]).sum()
    return float((greater + 0.5 * equal) / (real.size * fake.size))


@dataclass
class Critics:
    """The discriminators of an export: the projection D (V, w0, b) and, when present, the lip discriminator."""

    embedder: nn.Module
    discriminator: nn.Module | None
    lip: nn.Module | None
    landmark_image: object
    """landmarks [68, 2] -> uint8 landmark image (the avatar's drawing function)."""

    @classmethod
    def load(cls, head, checkpoint: str | Path) -> Critics:
        """From a `TalkingHead` and its export file (for the lip discriminator's weights)."""
        from talkinghead.checkpoint import load_checkpoint, load_model_state
        from talkinghead.models.lip_discriminator import LipDiscriminator, crop_size_for
        from talkinghead.shipped import resolve_checkpoint

        lip = None
        tensors = load_checkpoint(resolve_checkpoint(checkpoint)).tensors
        if any(name.startswith("lip_discriminator.") for name in tensors):
            lip = LipDiscriminator(crop_size_for(head.config.model.image_size))
            load_model_state(lip, tensors, prefix="lip_discriminator.", source=str(checkpoint))
            lip = lip.to(head.device).eval()
        from talkinghead.landmarks.drawing import draw_landmarks

        size = head.config.model.image_size
        return cls(head.embedder, head.discriminator, lip, lambda points: draw_landmarks(points, size, head.config))

    @torch.no_grad()
    def scores(self, images: np.ndarray, landmarks: np.ndarray, source_images: np.ndarray,
               source_landmarks: np.ndarray) -> dict[str, np.ndarray]:
        """Scores of frames uint8 [M, S, S, 3] with their landmarks [M, 68, 2] for the person of the T sources
        (uint8 [T, S, S, 3], [T, 68, 2]): {"projection": [M], "lip": [M]} (each only when that critic exists)."""
        from talkinghead.models.lip_discriminator import mouth_crops
        from talkinghead.pixels import to_tensor

        device = next(self.embedder.parameters()).device
        drawn = to_tensor(np.stack([self.landmark_image(p) for p in landmarks]), device)
        frames = to_tensor(np.asarray(images), device)
        out: dict[str, np.ndarray] = {}
        if self.discriminator is not None:
            source_drawn = to_tensor(np.stack([self.landmark_image(p) for p in source_landmarks]), device)
            embedding = self.embedder(to_tensor(np.asarray(source_images), device), source_drawn).mean(0)  # ê_NEW
            v, _ = self.discriminator.encode(frames, drawn)
            w_prime = self.discriminator.w0 + embedding  # w′ at the start of fine-tuning
            out["projection"] = self.discriminator.realism(v, None, w_prime).float().cpu().numpy()
        if self.lip is not None:
            points = torch.from_numpy(np.asarray(landmarks, np.float32)).to(device)
            size = self.lip.crop_size
            scores, _ = self.lip(mouth_crops(frames, points, size), mouth_crops(drawn, points, size))
            out["lip"] = scores.float().cpu().numpy()
        return out


__all__ = ["Critics", "auc"]
