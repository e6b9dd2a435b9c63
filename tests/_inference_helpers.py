"""Tiny networks for the personalization/animation tests.

`tiny_networks()` gives the real `talkinghead.models` (an import error fails the test: it is never hidden).
`tiny_networks(stand_ins=True)` gives small contract-only stand-ins (Embedder(cfg)(frames, landmark_images) ->
[B, N]; Generator with `projection`, `project`, `num_adain_params`, forward(landmark_images, psi); Discriminator
with `encode`, `score`, `w0`, `b`, `video_embeddings`), for unit tests of loop logic only, which must ask for them.
"""

from __future__ import annotations

import numpy as np
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


def tiny_networks(seed: int = 0, stand_ins: bool = False):
    """(config, embedder, generator, discriminator) at tiny-64 with random weights; ``stand_ins`` for the
    fast contract-only networks (loop logic tests on 2 shared CPU cores)."""
    config = preset("tiny-64")
    torch.manual_seed(seed)
    if stand_ins:
        Embedder, Generator, Discriminator = StandInEmbedder, StandInGenerator, StandInDiscriminator  # noqa: N806
    else:
        from talkinghead.models import Discriminator, Embedder, Generator
    embedder = Embedder(config.model).eval()
    generator = Generator(config.model).eval()
    discriminator = Discriminator(config.model, 4).eval()
    return config, embedder, generator, discriminator


def l1_content(fake, real):
    return (fake - real).abs().mean()


def face(jaw_width=1.0, eye_spacing=0.4, eye_width=0.2, mouth_width=0.5, mouth_open=0.0, eye_open=0.06,
         centre=(100.0, 100.0), scale=60.0, angle=0.0) -> np.ndarray:
    """A parametric iBUG-68 face: coordinates in face units (x right, y down), then rotated, scaled, moved."""
    points = np.zeros((68, 2))
    t = np.linspace(-1, 1, 17)
    points[0:17] = np.stack([jaw_width * np.sin(t * 1.3) / np.sin(1.3), -0.2 + 1.1 * (1 - np.cos(t * 1.3))], 1)
    brow_x = np.linspace(-0.15, 0.15, 5)
    points[17:22] = np.stack([-eye_spacing + brow_x, -0.45 - 0.05 * np.cos(brow_x * 8)], 1)
    points[22:27] = np.stack([eye_spacing + brow_x, -0.45 - 0.05 * np.cos(brow_x * 8)], 1)
    points[27:31] = np.stack([np.zeros(4), np.linspace(-0.3, 0.15, 4)], 1)
    points[31:36] = np.stack([np.linspace(-0.12, 0.12, 5), 0.25 + 0.03 * np.abs(np.linspace(-1, 1, 5))], 1)
    for start, cx in ((36, -eye_spacing), (42, eye_spacing)):
        angles = np.linspace(0, 2 * np.pi, 7)[:-1]
        points[start:start + 6] = np.stack([cx - eye_width / 2 * np.cos(angles),
                                            -0.25 - eye_open / 2 * np.sin(angles)], 1)
    outer = np.linspace(0, 2 * np.pi, 13)[:-1]
    points[48:60] = np.stack([-mouth_width / 2 * np.cos(outer), 0.5 - (0.04 + mouth_open / 2) * np.sin(outer)], 1)
    inner = np.linspace(0, 2 * np.pi, 9)[:-1]
    points[60:68] = np.stack([-mouth_width / 3 * np.cos(inner), 0.5 - (mouth_open / 2) * np.sin(inner)], 1)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (points @ rotation.T * scale + np.asarray(centre)).astype(np.float32)
