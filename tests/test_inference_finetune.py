"""Few-shot fine-tuning (paper §3.3): start state, learning, schedule, determinism."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from _inference_helpers import l1_content, tiny_networks
from talkinghead.config import FinetuneConfig
from talkinghead.training.finetune import finetune, holdout_split, start_state


def sources(shots: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(shots, 3, 64, 64, generator=g) * 2 - 1
    landmark_images = torch.where(torch.rand(shots, 3, 64, 64, generator=g) > 0.9, 1.0, -1.0)
    return frames, landmark_images


def test_start_state_is_the_formulas():
    _, embedder, generator, discriminator = tiny_networks()
    frames, landmark_images = sources(3)
    start = start_state(embedder, generator, discriminator, frames, landmark_images)
    with torch.no_grad():
        e_new = embedder(frames, landmark_images).mean(0)  # Eq. 7
        assert torch.allclose(start.embedding, e_new, atol=1e-6)
        assert torch.allclose(start.psi, generator.project(e_new[None])[0], atol=1e-6)  # ψ′ = P ê_NEW
        assert torch.allclose(start.discriminator_w, discriminator.w0 + e_new, atol=1e-6)  # w′ = w0 + ê_NEW
    # Zero steps returns exactly the start state and leaves the meta-learned networks untouched.
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    result = finetune(embedder, generator, discriminator, frames, landmark_images, l1_content, steps=0)
    assert torch.equal(result.psi, start.psi) and torch.equal(result.discriminator_w, start.discriminator_w)
    assert result.steps == 0
    result = finetune(embedder, generator, discriminator, frames, landmark_images, l1_content, steps=2)
    for key, value in generator.state_dict().items():
        assert torch.equal(value, before[key]), f"fine-tuning modified the original generator's {key}"
    assert not torch.equal(result.psi, start.psi)


def test_a_few_steps_lower_the_content_loss_and_are_deterministic():
    _, embedder, generator, discriminator = tiny_networks(stand_ins=True)
    frames, landmark_images = sources(2)
    config = FinetuneConfig(lr_generator=2e-3)

    def loss_of(g, psi):
        with torch.no_grad():
            return float(l1_content(g(landmark_images, psi[None].expand(2, -1)), frames))

    start = start_state(embedder, generator, discriminator, frames, landmark_images)
    before = loss_of(generator, start.psi)
    calls = []
    result = finetune(embedder, generator, discriminator, frames, landmark_images, l1_content, config,
                      steps=15, seed=3, progress=lambda step, total, info: calls.append((step, total)))
    assert loss_of(result.generator, result.psi) < 0.97 * before
    assert calls[-1] == (15, 15) and len(calls) == 15
    again = finetune(embedder, generator, discriminator, frames, landmark_images, l1_content, config,
                     steps=15, seed=3)
    assert torch.equal(again.psi, result.psi)


def test_schedule_batches_and_holdout():
    config = FinetuneConfig()
    assert holdout_split(1, config) == ([0], [])
    assert holdout_split(7, config) == (list(range(7)), [])
    train, held = holdout_split(16, config)
    assert len(held) == 2 and not set(train) & set(held) and len(train) == 14
    assert holdout_split(16, config, holdout=0) == (list(range(16)), [])
    with pytest.raises(ValueError, match="hold out"):
        holdout_split(2, config, holdout=2)

    _, embedder, generator, discriminator = tiny_networks(stand_ins=True)
    # T = 1: 40 epochs of one image = 40 steps (the paper's schedule).
    frames, landmark_images = sources(1)
    result = finetune(embedder, generator, discriminator, frames, landmark_images, l1_content,
                      dataclasses.replace(config, epochs=3))
    assert result.steps == 3 and result.epochs == 3 and result.holdout_indices == []
    # T = 9: ceil(9/8) = 2 held out, 7 train in one batch per epoch; held-out loss recorded each epoch.
    frames, landmark_images = sources(9)
    result = finetune(embedder, generator, discriminator, frames, landmark_images, l1_content,
                      dataclasses.replace(config, epochs=4, patience=1), early_stopping=True)
    assert len(result.holdout_indices) == 2
    assert all("holdout" in record for record in result.history)
    assert result.steps == result.epochs  # 7 training frames -> one batch per epoch
    if result.stopped_early:
        assert result.epochs < 4 and result.best_epoch is not None
