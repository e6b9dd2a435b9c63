"""Tiny networks for the personalization/animation tests.

The real `talkinghead.models` are used when they import; otherwise small stand-ins with the same contract
(brief: Embedder(cfg)(frames, landmark_images) -> [B, N]; Generator with `projection`, `project`,
`num_adain_params`, forward(landmark_images, psi); Discriminator with `encode`, `score`, `w0`, `b`,
`video_embeddings`) so that the personalization logic is tested either way.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm

from talkinghead.config import preset


class StandInEmbedder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.conv = nn.Conv2d(6, cfg.embedding_dim, 4, stride=4)

    def forward(self, frames, landmark_images):
        return torch.relu(self.conv(torch.cat([frames, landmark_images], 1)).mean((2, 3)))


class StandInGenerator(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.channels = 8
        self.num_adain_params = 2 * self.channels
        self.projection = spectral_norm(nn.Linear(cfg.embedding_dim, self.num_adain_params))
        self.encode = nn.Conv2d(3, self.channels, 3, padding=1)
        self.norm = nn.InstanceNorm2d(self.channels, affine=False)
        self.decode = nn.Conv2d(self.channels, 3, 3, padding=1)

    def project(self, embedding):
        return self.projection(embedding)

    def forward(self, landmark_images, psi):
        bias, weight = psi[:, : self.channels], psi[:, self.channels:]
        h = self.norm(self.encode(landmark_images)) * weight[:, :, None, None] + bias[:, :, None, None]
        return torch.tanh(self.decode(torch.relu(h)))


class StandInDiscriminator(nn.Module):
    def __init__(self, cfg, num_videos):
        super().__init__()
        n = cfg.embedding_dim
        self.block1 = nn.Conv2d(6, 16, 4, stride=4)
        self.block2 = nn.Conv2d(16, n, 4, stride=4)
        self.video_embeddings = nn.Embedding(num_videos, n, sparse=True)
        self.w0 = nn.Parameter(torch.randn(n) * 0.1)
        self.b = nn.Parameter(torch.zeros(()))

    def encode(self, images, landmark_images):
        h1 = torch.relu(self.block1(torch.cat([images, landmark_images], 1)))
        h2 = torch.relu(self.block2(h1))
        return torch.relu(h2.mean((2, 3))), [h1, h2]

    def score(self, v, w):
        return (v * w).sum(1) + self.b

    def forward(self, images, landmark_images, video_index):
        v, features = self.encode(images, landmark_images)
        return self.score(v, self.video_embeddings(video_index) + self.w0), features


def tiny_networks(seed: int = 0):
    """(config, embedder, generator, discriminator) at tiny-64 with random weights."""
    config = preset("tiny-64")
    torch.manual_seed(seed)
    try:
        from talkinghead.models import Discriminator, Embedder, Generator
    except ImportError:
        Embedder, Generator, Discriminator = StandInEmbedder, StandInGenerator, StandInDiscriminator  # noqa: N806
    embedder = Embedder(config.model).eval()
    generator = Generator(config.model).eval()
    discriminator = Discriminator(config.model, 4).eval()
    return config, embedder, generator, discriminator


def l1_content(fake, real):
    return (fake - real).abs().mean()
