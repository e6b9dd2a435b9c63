"""The mouth's own source shares (``model.mouth_blend_power``, `talkinghead.landmarks.mouth_region`): the shares
favour the source whose mouth is shaped like the driver's, stay continuous (no popping), change nothing outside the
driver's mouth region, and inference and fine-tuning mix by them alike."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from talkinghead.config import ConfigError, preset
from talkinghead.landmarks.mouth_region import (
    mouth_region,
    mouth_shape_distance,
    mouth_shares,
    mouth_source_weights,
    regional_weights,
)
from talkinghead.models.warp_generator import WarpGenerator, WarpSources, identity_grid, sample
from test_warp_inference import SIZE, personalize, synthetic_frames, warp_head

pytestmark = pytest.mark.usefixtures("one_thread")


def _face(gap: float, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """68 points of a simple face at 64 px whose inner lips are ``gap`` px apart, moved and scaled as a whole."""
    from test_issue25_machinery import _face as face

    points = face(gap)
    centre = points.mean(0)
    return ((points - centre) * scale + centre + shift).astype(np.float32)


def test_the_mouth_distance_reads_the_mouth_shape_not_where_the_head_is() -> None:
    driver = _face(6.0)
    sources = np.stack([_face(6.0, shift=5.0, scale=1.2), _face(0.0), _face(3.0)])
    distances = mouth_shape_distance(sources, driver)
    assert distances[0] == pytest.approx(0.0, abs=1e-6)  # the same mouth, the head moved and scaled
    assert distances[1] > distances[2] > 0.01  # closed is farther than half open
    with pytest.raises(ValueError, match="source_landmarks"):
        mouth_shape_distance(driver, driver)


def test_the_shares_favour_the_nearest_mouth_keep_the_rule_at_zero_and_vanish_with_the_rule() -> None:
    weights, distances = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.05, 0.1])
    np.testing.assert_allclose(mouth_shares(weights, distances, 0.0), weights, atol=1e-7)
    sharp = mouth_shares(weights, distances, 4.0)
    assert sharp.sum() == pytest.approx(1.0) and int(sharp.argmax()) == 1 and sharp[1] > 0.8
    assert mouth_shares(weights, distances, 32.0)[1] > 0.999  # q large: one source
    # A source leaving the rule's N nearest (its weight falling to 0) takes its mouth share with it, continuously.
    fading = [mouth_shares(np.array([0.6, w, 0.4 - w]), distances, 4.0)[1] for w in (1e-2, 1e-3, 1e-4, 0.0)]
    assert fading[-1] == 0.0 and fading[0] > fading[1] > fading[2] > fading[3]
    with pytest.raises(ValueError, match="mouth_blend_power"):
        mouth_shares(weights, distances, -1.0)


def test_the_region_covers_the_lips_and_their_surround_and_nothing_far() -> None:
    driver = torch.from_numpy(_face(6.0))[None]
    region = mouth_region(driver, SIZE, SIZE)
    assert region.shape == (1, 1, SIZE, SIZE) and float(region.min()) >= 0 and float(region.max()) <= 1
    assert float(region[0, 0, 44, 32]) == 1.0  # the mouth's centre
    assert float(region[0, 0, 44, 21]) > 0  # beyond the lip corners (24 and 40 at y 44): the grown surround
    assert float(region[0, 0, 24, 22]) == 0 and float(region[0, 0, 5, 5]) == 0  # an eye, a corner


def test_per_pixel_shares_sum_to_one_and_are_the_rule_outside_the_region() -> None:
    weights, mouth = torch.tensor([[0.6, 0.4]]), torch.tensor([[0.1, 0.9]])
    region = torch.zeros(1, 1, 8, 8)
    region[..., 2:5, 2:5] = 1
    region[..., 5, 2:5] = 0.5
    shares = regional_weights(weights, mouth, region)
    torch.testing.assert_close(shares.sum(1), torch.ones(1, 8, 8))
    torch.testing.assert_close(shares[0, :, 0, 0], weights[0])
    torch.testing.assert_close(shares[0, :, 3, 3], mouth[0])
    torch.testing.assert_close(shares[0, :, 5, 3], torch.tensor([0.35, 0.65]))


def test_the_generator_mixes_by_per_pixel_shares_and_equals_the_rule_when_they_are_constant() -> None:
    torch.manual_seed(0)
    generator = WarpGenerator(dataclasses.replace(preset("warp-tiny").model, source_blend="smooth")).eval()
    rng = torch.Generator().manual_seed(2)
    grids = identity_grid(SIZE, SIZE)[None, None] + 0.05 * torch.randn(1, 2, SIZE, SIZE, 2, generator=rng)
    sources = WarpSources(torch.rand(1, 2, 3, SIZE, SIZE, generator=rng) * 2 - 1,
                          torch.rand(1, 2, 3, SIZE, SIZE, generator=rng) * 2 - 1, grids, torch.tensor([[0.1, 0.2]]),
                          weights=torch.tensor([[0.7, 0.3]]))
    y = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    psi = generator.project(torch.randn(1, generator.cfg.embedding_dim))
    region = torch.zeros(1, 1, SIZE, SIZE)
    region[..., 40:52, 20:44] = 1
    with torch.no_grad():
        by_rule = generator(y, psi, sources)
        constant = generator(y, psi, dataclasses.replace(
            sources, weights=sources.weights[:, :, None, None].expand(-1, -1, SIZE, SIZE)))
        mouth = generator(y, psi, dataclasses.replace(
            sources, weights=regional_weights(sources.weights, torch.tensor([[0.0, 1.0]]), region)))
        at_twice = generator.render(y, psi, dataclasses.replace(  # rendered at 2x: the shares are upsampled
            sources, detail_images=torch.nn.functional.interpolate(sources.images[0], scale_factor=2)[None],
            weights=regional_weights(sources.weights, torch.tensor([[0.0, 1.0]]), region)))["output"]
    torch.testing.assert_close(constant, by_rule, atol=1e-6, rtol=0)
    outside = (1 - region).bool().expand(1, 3, SIZE, SIZE)
    torch.testing.assert_close(mouth[outside], by_rule[outside], atol=1e-6, rtol=0)
    second = sample(sources.images[:, 1], grids[:, 1])  # the untrained gate keeps to the rule: source 2 alone there
    torch.testing.assert_close(mouth[..., 42:50, 22:42], second[..., 42:50, 22:42], atol=1e-5, rtol=0)
    assert at_twice.shape == (1, 3, 2 * SIZE, 2 * SIZE)
    with pytest.raises(ValueError, match="per pixel"):
        generator(y, psi, dataclasses.replace(sources, weights=torch.ones(1, 2, 8, 8) / 2))


def test_the_setting_needs_the_smooth_rule_and_is_refused_by_training() -> None:
    model = preset("warp-tiny").model
    with pytest.raises(ConfigError, match="source_blend=smooth"):
        dataclasses.replace(model, mouth_blend_power=4.0).validate()
    with pytest.raises(ConfigError, match=">= 0"):
        dataclasses.replace(model, source_blend="smooth", mouth_blend_power=-1.0).validate()
    dataclasses.replace(model, source_blend="smooth", mouth_blend_power=4.0).validate()
    from talkinghead.training.run import train_on_dataset

    config = preset("warp-tiny")
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, source_blend="smooth",
                                                                   mouth_blend_power=4.0))
    with pytest.raises(ConfigError, match="run setting of a trained model"):
        train_on_dataset(config, "no-such-data", "no-such-run")


def test_an_avatar_changes_only_its_mouth_and_fine_tuning_mixes_the_same_way() -> None:
    frames, landmarks = synthetic_frames(40)
    sources = list(range(0, 40, 5))  # T = 8
    settings = {"source_blend": "smooth", "inference_sources": 3}
    plain = personalize(warp_head(**settings), frames[sources], landmarks[sources])
    mouthy = personalize(warp_head(**settings, mouth_blend_power=8.0), frames[sources], landmarks[sources])
    targets = landmarks[[7, 13, 21, 33]]
    region = mouth_region(torch.from_numpy(targets), SIZE, SIZE)[:, 0].numpy()  # [4, S, S]
    a, b = plain.render_batch(targets).astype(int), mouthy.render_batch(targets).astype(int)
    differs = np.abs(a - b).max(-1)  # [4, S, S]
    assert differs[region == 0].max() == 0  # outside the mouth region: the same pixels
    assert differs[region > 0].mean() > 0.5  # inside it: another mix
    chosen = mouthy.warp_sources(targets)
    assert tuple(chosen.weights.shape) == (4, 3, SIZE, SIZE)

    from talkinghead.training.finetune_pairs import pair_batch, with_rule

    model = mouthy.config.model
    image_tensors = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    batch = pair_batch(image_tensors, image_tensors, landmarks, [7, 13], [[5, 10, 15], [10, 15, 20]])
    shares = np.array([[0.5, 0.3, 0.2], [0.4, 0.4, 0.2]], np.float32)
    batch = with_rule(batch, model, shares)
    expected, _ = mouth_source_weights(landmarks[[7, 13]], landmarks[[[5, 10, 15], [10, 15, 20]]], shares, 8.0, SIZE)
    torch.testing.assert_close(batch["source_weights"], expected)
