"""The optional pixel L1 content term (not in the paper; the CPU demo uses it): off by default, exact when on."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from talkinghead import losses
from talkinghead.config import preset
from talkinghead.perceptual_weights import build_feature_networks


@pytest.mark.parametrize("name", ["paper-256", "small-128", "tiny-64"])
def test_paper_presets_have_no_pixel_term(name):
    assert preset(name).loss.pixel_weight == 0.0


def test_pixel_term_is_the_l1_of_the_images_and_weighted_in_one_place():
    loss = dataclasses.replace(preset("tiny-64").loss, feature_network="mobilenet-offline", pixel_weight=3.0)
    networks = build_feature_networks(loss)
    assert set(networks) == {"mobilenet", "pixel"}
    generated, real = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    terms = losses.content_losses({"pixel": networks["pixel"]}, generated, real)
    assert torch.allclose(terms["pixel"], (generated - real).abs().mean())
    weights = loss.resolved_weights()
    assert torch.allclose(losses.weighted_sum(terms, weights), 3.0 * (generated - real).abs().mean())
