"""The lip-region discriminator (ours, issue 25): a critic that looks only at the mouth, beside the paper's.

Pixel and perceptual losses reward the AVERAGE of what an open mouth could hold, and no single guess of the
interior beats the warp's stretched lip on L1 (measured in issue 25: a network trained with L1 alone on 4,300
closed-source/open-target mouth pairs learned to keep the warp). A discriminator rewards an interior that LOOKS
like a mouth (teeth, tongue, the dark cavity) instead. LivePortrait trains its generator against three (global,
face, lip); the paper's projection discriminator stays as it is, and this one is added.

Input: the mouth crop of a frame and of its landmark image, [B, 6, S, S] (S = `crop_size`, a quarter of the frame:
the mouth at the crop's centre, `mouth_crops`). Architecture: three spectrally normalized 4x4 stride-2 convolutions
(32, 64, 128 channels, LeakyReLU 0.2) and a 3x3 convolution to one logit per patch; the score is the mean over
patches (a PatchGAN whose patches see most of the mouth). Unconditional on the person: the mouth's realism, not its
identity, is the question here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

OUTER_LIP = slice(48, 60)
CROP_MARGIN = 0.35
"""The crop is the outer-lip box's larger side enlarged by this share on every side (lips, philtrum and chin)."""


def mouth_crops(images: torch.Tensor, landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """Square crops [B, C, size, size] of images [B, C, H, W] around the mouth of landmarks [B, 68, 2] (pixels at
    the images' size), by bilinear sampling (differentiable in the images; the box is a constant)."""
    batch, _, height, width = images.shape
    lips = landmarks[:, OUTER_LIP].to(images.dtype)
    low, high = lips.amin(1), lips.amax(1)  # [B, 2]
    centre = (low + high) / 2
    side = (high - low).amax(1) * (1 + 2 * CROP_MARGIN)  # [B]
    steps = (torch.arange(size, dtype=images.dtype, device=images.device) + 0.5) / size - 0.5  # [size]
    xs = centre[:, 0, None] + side[:, None] * steps[None]  # [B, size] pixel coordinates
    ys = centre[:, 1, None] + side[:, None] * steps[None]
    grid = torch.stack([((2 * xs + 1) / width - 1)[:, None, :].expand(-1, size, -1),
                        ((2 * ys + 1) / height - 1)[:, :, None].expand(-1, -1, size)], dim=-1)  # [B, S, S, 2]
    return F.grid_sample(images, grid.detach(), mode="bilinear", padding_mode="border", align_corners=False)


class LipDiscriminator(nn.Module):
    """``lip_discriminator(mouth_images [B,3,S,S], mouth_landmark_images [B,3,S,S]) -> (score [B], features)``."""

    def __init__(self, crop_size: int, channels: int = 32) -> None:
        super().__init__()
        if crop_size < 16:
            raise ValueError(f"the lip discriminator needs mouth crops of 16 px at least, got {crop_size}")
        self.crop_size = crop_size
        widths = [6, channels, 2 * channels, 4 * channels]
        self.blocks = nn.ModuleList(spectral_norm(nn.Conv2d(widths[i], widths[i + 1], 4, stride=2, padding=1))
                                    for i in range(3))
        self.head = spectral_norm(nn.Conv2d(widths[-1], 1, 3, padding=1))

    def forward(self, mouths: torch.Tensor,
                mouth_landmark_images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = torch.cat([mouths, mouth_landmark_images], dim=1)
        features = []
        for block in self.blocks:
            h = F.leaky_relu(block(h), 0.2)
            features.append(h)
        return self.head(h).mean(dim=(1, 2, 3)), features


def crop_size_for(image_size: int) -> int:
    """The lip crops' side for frames of ``image_size``: a quarter of it (32 at 128), at least 16."""
    return max(16, image_size // 4)


__all__ = ["CROP_MARGIN", "LipDiscriminator", "crop_size_for", "mouth_crops"]
