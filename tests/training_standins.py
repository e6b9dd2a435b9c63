"""Small helpers shared by the training tests: a micro config, a cheap content loss, in-memory episodes.

The content loss of these tests is the project's own pixel-L1 term (`PixelFeatures`, registered under its own
name ``pixel``), not a stand-in wearing a real network's name; `test_training_feature_network` runs a step with
the real offline MobileNetV2.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from talkinghead.config import Config, apply_overrides, preset
from talkinghead.models.feature_networks import PixelFeatures

MICRO = [
    "model.image_size=32", "model.min_channels=8", "model.max_channels=16", "model.embedding_dim=16",
    "model.generator_down_blocks=2", "model.generator_res_blocks=1",
    "model.attention_down_resolution=16", "model.attention_up_resolution=16",
    "data.frames_per_episode=2", "train.batch_size=2", "train.log_every=1", "train.image_every=1000",
    "train.checkpoint_every=1000",
    "loss.pixel_weight=0.024",  # about the weight the content term had with the paper's v1 VGG weights
]


def micro_config(*overrides: str, base: str = "tiny-64") -> Config:
    """tiny-64's structure shrunk to 32 px and 8-16 channels: a train step takes about a second on 2 cores."""
    return apply_overrides(preset(base), [*MICRO, *overrides])


def feature_networks() -> dict[str, nn.Module]:
    """Only the pixel-L1 content term (``loss.pixel_weight`` in `MICRO`): fast and deterministic."""
    return {"pixel": PixelFeatures()}


class RandomEpisodes(torch.utils.data.Dataset):
    """Episodes drawn from fixed per-video frames with numpy's GLOBAL RNG (so resume must restore it)."""

    def __init__(self, num_videos: int = 4, frames: int = 5, size: int = 32, k: int = 2, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.images = torch.rand(num_videos, frames, 3, size, size, generator=generator) * 2 - 1
        self.landmarks = torch.rand(num_videos, frames, 3, size, size, generator=generator) * 2 - 1
        self.k = k
        self.poison = False

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        order = np.random.permutation(self.images.shape[1])
        sources, target = order[: self.k], order[self.k]
        item = {
            "source_images": self.images[index, sources], "source_landmark_images": self.landmarks[index, sources],
            "target_image": self.images[index, target].clone(), "target_landmark_image": self.landmarks[index, target],
            "video_index": torch.tensor(index),
        }
        if self.poison:
            item["target_image"][0, 0, 0] = float("nan")
        return item


def make_batch(size: int = 32, k: int = 2, video_index: tuple[int, ...] = (1, 3), seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    b = len(video_index)

    def rand(*shape):
        return torch.rand(*shape, generator=generator) * 2 - 1

    return {"source_images": rand(b, k, 3, size, size), "source_landmark_images": rand(b, k, 3, size, size),
            "target_image": rand(b, 3, size, size), "target_landmark_image": rand(b, 3, size, size),
            "video_index": torch.tensor(video_index)}


@pytest.fixture(autouse=True)
def single_thread():
    """One intra-op thread: on the shared 2-core machine, 2 OpenMP threads under load made a micro train step
    ~60x slower (3.3 s vs 0.05 s, spin-waiting); results do not depend on it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
