"""The embedder E(x, y; φ) -> ê ∈ R^N (paper §3.1, §3.4).

Input: a frame ⊕ its landmark image (6 channels). Residual down blocks without normalization from the
image size to 4x4 (six at 256: 64-128-256-[SA@32]-512-512-512), self-attention at 32x32, then global
sum pooling followed by ReLU. At paper-256 this is 14.9M parameters (paper: 15M).
"""

from __future__ import annotations

import torch
from torch import nn

from talkinghead.config import ModelConfig
from talkinghead.models.layers import ResidualDown, SelfAttention, channels


def down_trunk(cfg: ModelConfig, in_channels: int, out_channels: int) -> tuple[nn.ModuleList, nn.ModuleDict]:
    """Residual down blocks from ``cfg.image_size`` to 4x4 without normalization (shared by E and V).

    Returns the blocks and the self-attention after the block that reaches ``attention_down_resolution``
    (keyed by the block index as a string). The last block outputs ``out_channels`` (= N).
    """
    num_blocks = (cfg.image_size // 4).bit_length() - 1  # log2(image_size / 4)
    blocks = nn.ModuleList()
    attention = nn.ModuleDict()
    previous = in_channels
    for level in range(num_blocks):
        width = out_channels if level == num_blocks - 1 else channels(cfg.min_channels, cfg.max_channels, level)
        blocks.append(ResidualDown(previous, width, normalize=False, preactivate=level > 0))
        if cfg.image_size >> (level + 1) == cfg.attention_down_resolution:
            attention[str(level)] = SelfAttention(width)
        previous = width
    if not attention:
        raise ValueError(f"model.attention_down_resolution={cfg.attention_down_resolution} is not reached by "
                         f"the down blocks of a {cfg.image_size}px network (they reach {cfg.image_size // 2}..4)")
    return blocks, attention


class Embedder(nn.Module):
    """E: ``embedder(frames [B,3,H,W], landmark_images [B,3,H,W]) -> ê [B, N]`` (per frame; Eq. 1 averages)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.blocks, self.attention = down_trunk(cfg, 6, cfg.embedding_dim)

    def forward(self, frames: torch.Tensor, landmark_images: torch.Tensor) -> torch.Tensor:
        h = torch.cat([frames, landmark_images], dim=1)  # [B, 6, H, W]
        for index, block in enumerate(self.blocks):
            h = block(h)
            if str(index) in self.attention:
                h = self.attention[str(index)](h)
        return torch.relu(h.sum(dim=(2, 3)))  # global sum pooling, then ReLU: [B, N, 4, 4] -> [B, N]
