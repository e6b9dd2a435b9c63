"""Gradient routing of the alternating updates: which parameters each phase may change (paper §3.2).

The summed-loss bug of earlier re-implementations (one backward of L_G + L_DSC, or stepping D with the E/G
loss) changes D in the E/G phase, or E/G in the D phase, or W through −r̂: each of these tests would fail.
"""

from __future__ import annotations

import functools

import pytest
import torch

from talkinghead.models import Discriminator, Embedder, Generator
from talkinghead.training.loop import MetaLearner
from training_standins import feature_networks, make_batch, micro_config, single_thread  # noqa: F401

NUM_VIDEOS = 6
BATCH_ROWS = [1, 3]


def make_learner(*overrides: str) -> MetaLearner:
    torch.manual_seed(0)
    config = micro_config(*overrides)
    return MetaLearner(config, Embedder(config.model), Generator(config.model),
                       Discriminator(config.model, NUM_VIDEOS), feature_networks())


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> set[str]:
    return {name for name, p in module.named_parameters() if not torch.equal(before[name], p.detach())}


def changed_rows(before: torch.Tensor, after: torch.Tensor) -> list[int]:
    return [i for i in range(before.shape[0]) if not torch.equal(before[i], after[i])]


def test_discriminator_step_changes_only_discriminator_and_batch_rows_of_w():
    learner = make_learner()
    batch = make_batch()
    embedding, generated = learner.generate(batch)
    e0, g0, d0 = snapshot(learner.embedder), snapshot(learner.generator), snapshot(learner.discriminator)
    w_before = learner.video_embeddings.detach().clone()
    logs = learner.discriminator_step(batch, generated.detach())
    assert logs is not None and torch.isfinite(logs["loss/discriminator"])
    assert changed(e0, learner.embedder) == set() and changed(g0, learner.generator) == set()
    assert all(p.grad is None for p in learner.generator_parameters)  # L_DSC has no path into E or G
    d_changed = changed(d0, learner.discriminator)  # (b may stay: with every margin active its gradient is 1 - 1 = 0)
    assert "w0" in d_changed and any(name.startswith("blocks.") for name in d_changed)
    assert changed_rows(w_before, learner.video_embeddings.detach()) == BATCH_ROWS


def test_discriminator_step_refuses_an_attached_fake():
    learner = make_learner()
    batch = make_batch()
    _, generated = learner.generate(batch)
    with pytest.raises(ValueError, match="detach"):
        learner.discriminator_step(batch, generated)


@pytest.mark.parametrize("variant,match_weight,rows", [("FT", None, BATCH_ROWS), ("FF", None, []), ("FT", 0.0, [])])
def test_generator_step_never_updates_discriminator(variant, match_weight, rows):
    """FT: W's batch rows move (L_MCH). FF, or FT with L_MCH weighted 0: W does not move at all, so −r̂ and
    L_FM never reach W (the score uses W_i.detach())."""
    overrides = [f"train.variant={variant}"]
    if match_weight is not None:
        overrides.append(f"loss.match_weight={match_weight}")
    learner = make_learner(*overrides)
    batch = make_batch()
    embedding, generated = learner.generate(batch)
    e0, g0, d0 = snapshot(learner.embedder), snapshot(learner.generator), snapshot(learner.discriminator)
    w_before = learner.video_embeddings.detach().clone()
    logs = learner.generator_step(batch, embedding, generated)
    assert logs is not None
    assert ("loss/match" in logs) == (variant == "FT")
    assert changed(d0, learner.discriminator) <= {"video_embeddings.weight"}  # θ, w0, b untouched
    assert all(p.grad is None for p in learner.discriminator_parameters)
    assert changed_rows(w_before, learner.video_embeddings.detach()) == rows
    assert changed(e0, learner.embedder) and changed(g0, learner.generator)
    assert "projection.weight" in changed(g0, learner.generator)  # P is trained with G
    assert all(p.requires_grad for p in learner.discriminator.parameters())  # restored after the phase


def test_match_loss_gradient_reaches_embedder_and_w():
    learner = make_learner("loss.pixel_weight=0", "loss.adversarial_weight=0",
                           "loss.feature_matching_weight=0")
    batch = make_batch()
    embedding, generated = learner.generate(batch)
    w_before = learner.video_embeddings.detach().clone()
    distance_before = (embedding.detach() - w_before[BATCH_ROWS]).abs().mean()
    e0 = snapshot(learner.embedder)
    learner.generator_step(batch, embedding, generated)
    assert changed(e0, learner.embedder)  # only L_MCH is weighted: its gradient moved E ...
    distance_after = (learner.embed(learner.embedder, learner.to_device(batch)).detach()
                      - learner.video_embeddings.detach()[BATCH_ROWS]).abs().mean()
    assert distance_after < distance_before  # ... and W_i, toward each other


def test_train_step_counts_steps_images_and_updates_ema():
    learner = make_learner()
    ema_before = snapshot(learner.ema.averaged["generator"])
    logs = learner.train_step(make_batch())
    assert logs["step"] == 1 and logs["images"] == 2 and logs["skipped"] == 0.0
    for name in ("loss/discriminator", "loss/generator", "loss/pixel", "loss/adversarial", "loss/match"):
        assert name in logs
    assert changed(ema_before, learner.ema.averaged["generator"])


def test_non_finite_loss_skips_the_step_and_is_counted():
    learner = make_learner()
    poisoned = make_batch()
    poisoned["target_image"][0, 0, 0, 0] = float("nan")
    e0, d0 = snapshot(learner.embedder), snapshot(learner.discriminator)
    logs = learner.train_step(poisoned)
    assert logs["skipped"] == 1.0 and learner.bad_steps == 1 and learner.consecutive_bad_steps == 1
    assert changed(e0, learner.embedder) == set() and changed(d0, learner.discriminator) == set()
    learner.train_step(make_batch())
    assert learner.bad_steps == 1 and learner.consecutive_bad_steps == 0 and learner.step == 2


@pytest.mark.parametrize("option", ["train.mixed_precision=bf16", "train.mixed_precision=fp16",
                                    "train.channels_last=true", "train.activation_checkpointing=true"])
def test_memory_and_precision_options_take_a_finite_step(option):
    learner = make_learner(option)
    logs = learner.train_step(make_batch())
    assert logs["skipped"] == 0.0 and all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    assert logs["loss/pixel"] == pytest.approx(_reference_content_loss(), rel=0.05)  # same model, same batch


@functools.cache
def _reference_content_loss() -> float:
    return make_learner().train_step(make_batch())["loss/pixel"]
