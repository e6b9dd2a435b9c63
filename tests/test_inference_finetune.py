"""Few-shot fine-tuning (paper §3.3): start state, learning, schedule, determinism — on the real tiny-64 E, G, D."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from _inference_helpers import l1_content, tiny_networks
from talkinghead.config import FinetuneConfig, preset
from talkinghead.training import finetune as finetune_module
from talkinghead.training.finetune import finetune, holdout_split, require_finetunable, start_state
from training_standins import single_thread  # noqa: F401  (one intra-op thread on the shared cores)


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
    """The real tiny-64 G′ and D′ at the paper's learning rates: 20 steps lower the content loss."""
    _, embedder, generator, discriminator = tiny_networks()
    frames, landmark_images = sources(2)
    config = FinetuneConfig()

    def loss_of(g, psi):
        with torch.no_grad():
            return float(l1_content(g(landmark_images, psi[None].expand(2, -1)), frames))

    start = start_state(embedder, generator, discriminator, frames, landmark_images)
    before = loss_of(generator, start.psi)
    calls = []
    result = finetune(embedder, generator, discriminator, frames, landmark_images, l1_content, config,
                      steps=20, seed=3, progress=lambda step, total, info: calls.append((step, total, info)))
    assert loss_of(result.generator, result.psi) < 0.98 * before  # measured: 0.624 -> 0.599
    content = [info["content"] for _, _, info in calls]
    assert content[-1] < content[0] and sum(content[-5:]) < sum(content[:5])  # it falls over the run
    assert [(step, total) for step, total, _ in calls] == [(s, 20) for s in range(1, 21)]
    assert result.skipped_steps == 0
    again = finetune(embedder, generator, discriminator, frames, landmark_images, l1_content, config,
                     steps=20, seed=3)
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

    _, embedder, generator, discriminator = tiny_networks()
    # T = 1: 40 epochs of one image = 40 steps (the paper's schedule).
    frames, landmark_images = sources(1)
    result = finetune(embedder, generator, discriminator, frames, landmark_images, l1_content,
                      dataclasses.replace(config, epochs=3))
    assert result.steps == 3 and result.epochs == 3 and result.holdout_indices == []
    # T = 9: ceil(9/8) = 2 held out, 7 train in one batch per epoch; held-out loss recorded each epoch.
    frames, landmark_images = sources(9)
    result = finetune(embedder, generator, discriminator, frames, landmark_images, l1_content,
                      dataclasses.replace(config, epochs=4, patience=1), early_stopping=True)
    assert len(result.holdout_indices) == 2 and len(result.train_indices) == 7
    assert sorted(result.train_indices + result.holdout_indices) == list(range(9))
    assert all("holdout" in record for record in result.history)
    assert result.steps == result.epochs  # 7 training frames -> one batch per epoch
    best = min(range(len(result.history)), key=lambda i: result.history[i]["holdout"]) + 1
    assert result.best_epoch == best  # the best held-out epoch is the one returned ...
    assert result.stopped_early == (result.epochs < 4)  # ... and a run shorter than asked stopped early
    assert not result.stopped_early or result.epochs - best == 1  # patience 1: one epoch without improvement


def test_early_stopping_stops_after_patience_epochs_and_returns_the_best_state(monkeypatch):
    """Held-out losses scripted to rise after epoch 2: with patience 2 training stops after epoch 4, epoch 2's
    ψ′ is returned."""
    _, embedder, generator, discriminator = tiny_networks()
    frames, landmark_images = sources(9)
    scripted = iter([0.5, 0.4, 0.45, 0.46, 0.47, 0.48])
    psis = []

    def holdout_loss(g, psi, *args):
        psis.append(psi.detach().clone())
        return next(scripted)

    monkeypatch.setattr(finetune_module, "_holdout_loss", holdout_loss)
    result = finetune(embedder, generator, discriminator, frames, landmark_images, l1_content,
                      FinetuneConfig(epochs=6, patience=2, lr_generator=1e-3))
    assert result.stopped_early and result.epochs == 4 and result.best_epoch == 2
    assert torch.equal(result.psi, psis[1][0]) and not torch.equal(result.psi, psis[3][0])


def test_held_out_frames_do_not_shape_the_embedding():
    """Eq. 7 runs over the training frames only: changing a held-out frame leaves ê_NEW (and ψ′, w′) alone,
    changing a training frame does not."""
    _, embedder, generator, discriminator = tiny_networks()
    frames, landmark_images = sources(9)
    train, held = holdout_split(9, FinetuneConfig())
    result = finetune(embedder, generator, discriminator, frames, landmark_images, l1_content, steps=0)
    assert result.holdout_indices == held and result.train_indices == train
    expected = start_state(embedder, generator, discriminator, frames[train], landmark_images[train])
    assert torch.allclose(result.embedding, expected.embedding, atol=1e-6)
    for index, moves in ((held[0], False), (train[0], True)):
        changed = frames.clone()
        changed[index] = -changed[index]
        other = finetune(embedder, generator, discriminator, changed, landmark_images, l1_content, steps=0)
        assert torch.equal(other.embedding, result.embedding) != moves, index


def test_fine_tuning_an_ff_model_is_refused_in_one_line():
    _, embedder, generator, discriminator = tiny_networks()
    frames, landmark_images = sources(2)
    with pytest.raises(ValueError) as refused:
        finetune(embedder, generator, discriminator, frames, landmark_images, l1_content, steps=2, variant="FF")
    message = str(refused.value)
    assert "\n" not in message and "feed-forward (FF) variant, without L_MCH" in message
    assert "use --steps 0 or an FT checkpoint" in message
    with pytest.raises(ValueError, match="^runs/ff/export.safetensors was meta-learned as the feed-forward"):
        require_finetunable(preset("tiny-64-ff"), "runs/ff/export.safetensors")
    require_finetunable(preset("tiny-64"), "ft.safetensors")  # FT: allowed
