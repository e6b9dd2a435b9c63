"""The generator G(y, ê; ψ, P) with the projection P inside (paper §3.1, §3.4).

Johnson et al.'s image-to-image network with residual down/up blocks (BigGAN-style):
    landmark image [B,3,H,W]
    -> ``generator_down_blocks`` residual down blocks with plain instance norm (64-128-256-[SA@32]-512)
    -> ``generator_res_blocks`` AdaIN residual blocks at the bottleneck (16x16x512 at 256)
    -> as many AdaIN residual up blocks (512-256-128-[SA@64]-64-64)
    -> AdaIN - ReLU - conv3x3 -> 3 - tanh: image [B,3,H,W] in [-1, 1].
The AdaIN coefficients are ψ̂ = P ê with P a spectrally normalized linear layer N -> num_adain_params.
`project` computes ψ̂ once per person; `forward` takes ψ̂ and renders any number of frames.

Parameter count at paper-256: 31.1M convolutional + P (512 x 13,312 + 13,312 = 6.8M) = 37.9M (paper: 38M,
"including P"). This count is what implies the 16x16 bottleneck with 4 down blocks and 5 AdaIN residual
blocks (paper-notes §1.3): 6 down blocks to 4x4 would give ~60M, 4 bottleneck blocks ~33M.

ψ̂ layout: for every AdaIN layer in forward order (bottleneck blocks, up blocks, final), [scale (C) | shift (C)].
P's bias starts at 1 for the scales and 0 for the shifts, so ψ̂ ≈ identity AdaIN at initialization.
"""

from __future__ import annotations

import torch
from torch import nn

from talkinghead.config import ModelConfig
from talkinghead.models.layers import (
    AdaptiveInstanceNorm,
    ResidualAdaIN,
    ResidualDown,
    ResidualUp,
    SelfAttention,
    SNConv2d,
    SNLinear,
    channels,
)


class Generator(nn.Module):
    """G: ``generator(landmark_images [B,3,H,W], psi [B, num_adain_params]) -> images [B,3,H,W]`` in [-1, 1]."""

    needs_sources = False  # renders from the landmark image and ψ̂ alone (the warp family needs source frames)

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        depth = cfg.generator_down_blocks
        widths = [channels(cfg.min_channels, cfg.max_channels, level) for level in range(depth)]

        self.down = nn.ModuleList()
        self.down_attention = nn.ModuleDict()
        previous = 3
        for level, width in enumerate(widths):
            self.down.append(ResidualDown(previous, width, normalize=True, preactivate=level > 0))
            if cfg.image_size >> (level + 1) == cfg.attention_down_resolution:
                self.down_attention[str(level)] = SelfAttention(width)
            previous = width

        bottleneck = widths[-1]
        self.bottleneck = nn.ModuleList(ResidualAdaIN(bottleneck) for _ in range(cfg.generator_res_blocks))

        self.up = nn.ModuleList()
        self.up_attention = nn.ModuleDict()
        resolution = cfg.image_size >> depth
        for level in range(depth):
            out = widths[max(depth - 2 - level, 0)]
            self.up.append(ResidualUp(previous, out))
            resolution *= 2
            if resolution == cfg.attention_up_resolution:
                self.up_attention[str(level)] = SelfAttention(out)
            previous = out
        for name, part, reached in (("attention_down_resolution", self.down_attention, "down"),
                                    ("attention_up_resolution", self.up_attention, "up")):
            if not part:
                raise ValueError(f"model.{name}={getattr(cfg, name)} is not reached by the generator's {reached} "
                                 f"blocks ({cfg.image_size}px, {depth} down blocks); change it or the block count")

        self.output_norm = AdaptiveInstanceNorm(previous)
        self.output_conv = SNConv2d(previous, 3, 3)

        self.adain_sizes = [block.num_adain_params for block in self.bottleneck]
        self.adain_sizes += [block.num_adain_params for block in self.up]
        self.adain_sizes.append(self.output_norm.num_params)
        self.num_adain_params = sum(self.adain_sizes)

        self.projection = SNLinear(cfg.embedding_dim, self.num_adain_params)  # P
        with torch.no_grad():
            self.projection.bias.copy_(self._identity_coefficients())

    def _identity_coefficients(self) -> torch.Tensor:
        """ψ̂ of an identity AdaIN (scale 1, shift 0 everywhere): [num_adain_params]."""
        parts = []
        for module in self.modules():  # registration order = forward order: bottleneck, up blocks, output
            if isinstance(module, AdaptiveInstanceNorm):
                parts += [torch.ones(module.channels), torch.zeros(module.channels)]
        return torch.cat(parts)

    def project(self, embedding: torch.Tensor) -> torch.Tensor:
        """ψ̂ = P ê: [B, N] -> [B, num_adain_params]. Compute once per person, reuse for every frame."""
        return self.projection(embedding)

    def forward(self, landmark_images: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        if psi.shape[-1] != self.num_adain_params:
            raise ValueError(f"psi has {psi.shape[-1]} coefficients; this generator's AdaIN layers need "
                             f"{self.num_adain_params} (use generator.project(embedding))")
        if psi.shape[0] != landmark_images.shape[0]:
            if psi.shape[0] != 1:
                raise ValueError(f"psi has batch {psi.shape[0]} but landmark_images {landmark_images.shape[0]}; "
                                 "pass one psi per frame or a single psi [1, P] for all frames")
            psi = psi.expand(landmark_images.shape[0], -1)  # one person, many frames
        coefficients = list(psi.split(self.adain_sizes, dim=1))
        h = landmark_images
        for index, block in enumerate(self.down):
            h = block(h)
            if str(index) in self.down_attention:
                h = self.down_attention[str(index)](h)
        for block in self.bottleneck:
            h = block(h, coefficients.pop(0))
        for index, block in enumerate(self.up):
            h = block(h, coefficients.pop(0))
            if str(index) in self.up_attention:
                h = self.up_attention[str(index)](h)
        h = torch.relu_(self.output_norm(h, coefficients.pop(0)))
        return torch.tanh(self.output_conv(h))
