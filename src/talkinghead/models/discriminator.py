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
        """The projection head r = vᵀ w + b for v, w [B, N] -> [B]; Eq. 5's w is chosen by `realism`."""
        return (v * w).sum(dim=1) + self.b

    def realism(self, v: torch.Tensor, video_rows: torch.Tensor | None = None,
                w_prime: torch.Tensor | None = None) -> torch.Tensor:
        """The realism score (Eq. 5), the one place it is assembled, from V(x, y) = ``v`` [B, N]:

        meta-learning  r = vᵀ(W_i + w0) + b   with ``video_rows`` = W_i [B, N] (looked up by the caller, who
                                              decides whether W_i is detached);
        fine-tuning    r = vᵀ w′ + b          with ``w_prime`` = w′ [N] (w′ = w0 + ê_NEW at the start).
        -> [B].
        """
        if (video_rows is None) == (w_prime is None):
            raise ValueError("realism needs exactly one of video_rows (W_i, meta-learning) or w_prime (fine-tuning)")
        w = video_rows + self.w0 if w_prime is None else w_prime.expand_as(v)  # [B, N]
        return self.score(v, w)

    def forward(self, images: torch.Tensor, landmark_images: torch.Tensor,
                video_index: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        v, features = self.encode(images, landmark_images)
        return self.realism(v, self.video_embeddings(video_index)), features  # Eq. 5
