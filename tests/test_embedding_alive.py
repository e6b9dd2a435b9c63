"""W_i starts at ê_i the first time video i is seen, so L_MCH cannot collapse the embedder (FT variant).

Measured before this: from the small random W, every embedder output was 0 within 50 steps (v1 and v2
weights, paper and demo learning rates) because L_MCH pulls ê toward ~0 through the ReLU after sum pooling."""

from __future__ import annotations

import pytest
import torch

from talkinghead.config import apply_overrides, preset
from talkinghead.data.episodes import EpisodeDataset
from talkinghead.data.prepare import write_synthetic_dataset
from talkinghead.training.run import train_on_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def _alive_fraction(embedder, dataset) -> float:
    with torch.no_grad():
        outputs = [embedder(item["source_images"], item["source_landmark_images"])
                   for item in (dataset[i] for i in range(len(dataset)))]
    return float((torch.cat(outputs) > 0).float().mean())


@pytest.mark.slow
def test_the_embedder_stays_alive_under_the_matching_loss(tmp_path):
    """30 real meta-learning steps (about 15 s): the collapse took 25-50 steps, so fewer would prove nothing."""
    write_synthetic_dataset(tmp_path / "data", 12, 1, 8, 64, seed=0)
    config = apply_overrides(preset("tiny-64"), [
        "loss.feature_network=mobilenet-offline", "train.steps=30", "train.batch_size=4",
        "train.lr_generator=2e-4", "train.lr_discriminator=8e-4", "loss.weights_version=v1"])
    learner = train_on_dataset(config, tmp_path / "data", tmp_path / "run", progress=False)
    dataset = EpisodeDataset(tmp_path / "data", frames_per_episode=4, seed=1)
    assert learner.use_match
    assert _alive_fraction(learner.embedder, dataset) > 0.1
    seen = learner.video_started.nonzero().flatten().tolist()
    assert seen == list(range(12))  # 30 steps x 4 episodes visit every video
    embeddings = torch.stack([learner.embed(learner.embedder, {k: v[None] for k, v in dataset[i].items()})[0]
                              for i in seen])
    w = learner.video_embeddings.detach()[seen]
    # W_i tracks ê_i (L_MCH): their gap is small next to ê's own size.
    assert (w - embeddings).abs().mean() < 0.5 * embeddings.abs().mean()
