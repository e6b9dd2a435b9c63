"""train.parts=synthesis (issue 25): the E/G update trains E, P and the warp generator's synthesis branch only; the
warp parts stay exactly as they started, and the paper's generator refuses the setting."""

from __future__ import annotations

import pytest
import torch

from talkinghead.config import apply_overrides, preset
from talkinghead.models import Discriminator, Embedder, build_generator
from talkinghead.models.warp_generator import identity_grid
from talkinghead.training.loop import MetaLearner
from training_standins import feature_networks, micro_config, single_thread  # noqa: F401

SIZE = 64


def _warp_learner(*overrides: str) -> MetaLearner:
    torch.manual_seed(0)
    config = apply_overrides(preset("warp-tiny"), ["loss.pixel_weight=1",
                                                   *overrides])
    generator = build_generator(config.model)
    with torch.no_grad():  # off the exact mesh-warp start, so every head has something to learn
        for head in (generator.flow_head, generator.gate_head, generator.synthesis.mask_head):
            head.weight.normal_(0, 0.02)
            head.bias.normal_(0, 0.1)
    return MetaLearner(config, Embedder(config.model), generator, Discriminator(config.model, 4), feature_networks())


def _warp_batch(b: int = 2, k: int = 2) -> dict:
    generator = torch.Generator().manual_seed(1)

    def rand(*shape):
        return torch.rand(*shape, generator=generator) * 2 - 1

    grids = identity_grid(SIZE, SIZE)[None, None] + 0.05 * torch.randn(b, k, SIZE, SIZE, 2, generator=generator)
    return {"source_images": rand(b, k, 3, SIZE, SIZE), "source_landmark_images": rand(b, k, 3, SIZE, SIZE),
            "source_grids": grids, "source_distances": torch.rand(b, k, generator=generator),
            "target_image": rand(b, 3, SIZE, SIZE), "target_landmark_image": rand(b, 3, SIZE, SIZE),
            "video_index": torch.tensor([0, 2]), "identity_index": torch.tensor([0, 1])}


@pytest.mark.parametrize("parts", ["all", "synthesis"])
def test_only_the_chosen_parts_move(parts: str) -> None:
    learner = _warp_learner(f"train.parts={parts}")
    before = {name: p.detach().clone() for name, p in learner.generator.named_parameters()}
    embedder_before = [p.detach().clone() for p in learner.embedder.parameters()]
    for _ in range(2):
        assert learner.train_step(_warp_batch())["skipped"] == 0.0
    moved = {name.split(".")[0] for name, p in learner.generator.named_parameters()
             if not torch.equal(p, before[name])}
    warp_parts = {"flow_network", "flow_head", "confidence_head", "gate_head"}
    assert "synthesis" in moved and "projection" in moved
    assert any(not torch.equal(a, b) for a, b in zip(embedder_before, learner.embedder.parameters(), strict=True))
    if parts == "synthesis":
        assert not moved & warp_parts, moved
    else:  # the confidences move only where the gate opens below 1, which two steps need not reach
        assert warp_parts - {"confidence_head"} <= moved, moved


def test_the_paper_generator_refuses_synthesis_only_training() -> None:
    config = micro_config("train.parts=synthesis")
    with pytest.raises(ValueError, match="train.parts=synthesis .* paper's generator"):
        MetaLearner(config, Embedder(config.model), build_generator(config.model), Discriminator(config.model, 4),
                    feature_networks())
