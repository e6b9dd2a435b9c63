"""The projection discriminator D(x, y, i; θ, W, w0, b) (paper §3.1, Eq. 5; Miyato & Koyama 2018).

V(x, y; θ) is the embedder's trunk (residual down blocks without normalization to 4x4, self-attention at
32x32) plus one more residual block at 4x4, then global sum pooling and ReLU: 19.6M parameters at
paper-256 (paper: "the convolutional part of the discriminator has 20 million").

The realism score is r = V(x, y)ᵀ (W_i + w0) + b. W holds one row per training video in an
``nn.Embedding(num_videos, N, sparse=True)``: its gradient is a sparse tensor with one row per sample of
the batch, so with ``torch.optim.SparseAdam`` gradient and optimizer traffic for W grow with the batch,
not with the number of videos (VoxCeleb2: ~150,000). W is deliberately NOT spectrally normalized: σ(W)
depends on every row, which would make its gradient dense (it is an embedding table, not a conv/FC layer).
"""

from __future__ import annotations

import torch
from torch import nn

from talkinghead.config import ModelConfig
from talkinghead.models.embedder import down_trunk
from talkinghead.models.layers import ResidualBlock


class Discriminator(nn.Module):
    """``discriminator(images, landmark_images, video_index [B]) -> (r [B], features: list[Tensor])``."""

    def __init__(self, cfg: ModelConfig, num_videos: int) -> None:
        super().__init__()
        if num_videos < 1:
            raise ValueError(f"num_videos must be >= 1 (one row of W per training video), got {num_videos}")
        self.cfg = cfg
        self.num_videos = num_videos
        n = cfg.embedding_dim
        self.blocks, self.attention = down_trunk(cfg, 6, n)
        self.blocks.append(ResidualBlock(n, n))  # V's extra block at 4x4
        self.video_embeddings = nn.Embedding(num_videos, n, sparse=True)  # W, one row W_i per video
        nn.init.uniform_(self.video_embeddings.weight, -0.1, 0.1)
        self.w0 = nn.Parameter(torch.zeros(n))
        self.b = nn.Parameter(torch.zeros(()))

    def encode(self, images: torch.Tensor, landmark_images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """V(x, y): ([B, N], the activations after every residual block, for feature matching)."""
        h = torch.cat([images, landmark_images], dim=1)  # [B, 6, H, W]
        features = []
        for index, block in enumerate(self.blocks):
            h = block(h)
            if str(index) in self.attention:
                h = self.attention[str(index)](h)
            features.append(h)
        return torch.relu(h.sum(dim=(2, 3))), features  # sum pooling, then ReLU: [B, N]

    def score(self, v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """r = vᵀ w + b for v, w [B, N] (w = W_i + w0 in meta-learning, w′ in fine-tuning): [B]."""
        return (v * w).sum(dim=1) + self.b

    def forward(self, images: torch.Tensor, landmark_images: torch.Tensor,
                video_index: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        v, features = self.encode(images, landmark_images)
        w = self.video_embeddings(video_index) + self.w0  # W_i + w0: [B, N]
        return self.score(v, w), features  # Eq. 5
