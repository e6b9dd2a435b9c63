"""The lip discriminator's history of past mouths (``train.lip_pool_size``) and its own learning rate: the pool
fills, then replaces; each D_lip update scores this batch plus up to POOL_DRAW × B stored pairs; the pool is in the
training checkpoint and a resume restores it exactly; without a pool nothing changes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkinghead.config import ConfigError
from talkinghead.models import Discriminator, Embedder, Generator
from talkinghead.training.loop import MetaLearner
from talkinghead.training.mouth import POOL_DRAW, MouthCritic
from training_standins import feature_networks, make_batch, micro_config, single_thread  # noqa: F401

SIZE = 32


def _landmarks(batch: int) -> torch.Tensor:
    """68 points with the outer lip (48-59) around (16, 22) in a 32 px frame."""
    points = np.tile(np.array([[16.0, 12.0]], dtype=np.float32), (68, 1))
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    points[48:60] = np.stack([16 + 5 * np.cos(angles), 22 + 2 * np.sin(angles)], axis=1)
    inner = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    points[60:68] = np.stack([16 + 3 * np.cos(inner), 22 + np.sin(inner)], axis=1)
    return torch.from_numpy(points)[None].repeat(batch, 1, 1)


def _pair(batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(batch, 3, SIZE, SIZE, generator=generator) * 2 - 1 for _ in range(3))  # type: ignore


def test_the_pool_fills_then_replaces_and_each_update_scores_the_batch_and_the_drawn_pairs() -> None:
    critic = MouthCritic(SIZE, lr=1e-3, betas=(0.5, 0.999), device=torch.device("cpu"), pool_size=5)
    seen: list[int] = []
    critic.discriminator.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    landmarks = _landmarks(2)
    real, fake, drawn = _pair(2, 0)
    critic.discriminator_update(real, fake, drawn, landmarks)
    assert seen[-1] == 2 * 2 and critic.pool_count == 0  # an empty pool: this batch alone
    critic.remember(real, fake, drawn, landmarks)
    assert critic.pool_count == 2
    mouths, _ = critic.crops(torch.cat([real, fake]), torch.cat([drawn, drawn]), torch.cat([landmarks, landmarks]))
    torch.testing.assert_close(critic.pool["real"][:2], mouths[:2])
    torch.testing.assert_close(critic.pool["fake"][:2], mouths[2:])
    critic.discriminator_update(real, fake, drawn, landmarks)
    assert seen[-1] == 2 * (2 + 2)  # 2 stored pairs (fewer than POOL_DRAW × B = 6), no repeats
    for seed in range(1, 4):
        critic.remember(*_pair(2, seed), landmarks)
    assert critic.pool_count == 5  # capped: later pairs replace stored ones
    critic.discriminator_update(real, fake, drawn, landmarks)
    assert seen[-1] == 2 * (2 + min(5, POOL_DRAW * 2))
    drawn_pairs = critic.draw(5)
    assert drawn_pairs is not None
    assert len({tuple(t.flatten()[:8].tolist()) for t in drawn_pairs["real"]}) == 5  # without repeats


def test_without_a_pool_the_update_sees_only_this_batch_and_nothing_is_stored() -> None:
    critic = MouthCritic(SIZE, lr=1e-3, betas=(0.5, 0.999), device=torch.device("cpu"))
    real, fake, drawn = _pair(2, 0)
    critic.remember(real, fake, drawn, _landmarks(2))
    assert critic.pool_count == 0 and critic.pool_state() == {} and critic.draw(6) is None


def _learner(*overrides: str) -> MetaLearner:
    torch.manual_seed(0)
    config = micro_config("loss.lip_adversarial_weight=1", *overrides)
    return MetaLearner(config, Embedder(config.model), Generator(config.model), Discriminator(config.model, 6),
                       feature_networks())


def _batch(seed: int) -> dict:
    batch = make_batch(seed=seed)
    batch["target_landmarks"] = _landmarks(2)
    return batch


def test_the_pool_and_its_learning_rate_reach_the_learner_and_survive_a_resume() -> None:
    learner = _learner("train.lip_pool_size=3", "train.lr_lip_discriminator=0.003")
    assert learner.mouth is not None
    assert [group["lr"] for group in learner.mouth.optimizer.param_groups] == [0.003]
    for seed in range(2):
        assert learner.train_step(_batch(seed))["skipped"] == 0.0
    assert learner.mouth.pool_count == 3  # 2 episodes per step, remembered once per step (not per D update)
    tensors, meta = learner.state()
    assert tensors["lip_pool.real"].shape == (3, 3, 16, 16)
    resumed = _learner("train.lip_pool_size=3", "train.lr_lip_discriminator=0.003")
    resumed.load_state(tensors, meta, source="test")
    assert resumed.mouth is not None and resumed.mouth.pool_count == 3
    for name in ("real", "fake", "drawn"):
        torch.testing.assert_close(resumed.mouth.pool[name], learner.mouth.pool[name])
    # without the option the lip D keeps the discriminator's rate and no pool is saved
    plain = _learner()
    assert plain.mouth is not None
    assert [group["lr"] for group in plain.mouth.optimizer.param_groups] == [plain.config.train.lr_discriminator]
    plain.train_step(_batch(0))
    assert not any(name.startswith("lip_pool.") for name in plain.state()[0])


@pytest.mark.parametrize("override", ["train.lip_pool_size=-1", "train.lr_lip_discriminator=0"])
def test_bad_pool_settings_are_refused(override: str) -> None:
    with pytest.raises(ConfigError):
        micro_config(override)
