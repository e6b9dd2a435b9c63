"""Issue 25's parts, each checked on its own: the smooth source rule (no jumps), the landmark prior of the mouth,
the generator's use of both, the bounded flow, mouth-gap episodes, the lip discriminator's routing, the adversarial
ramp and the gradient norms, the runtimes with the new inputs, and what --set may change on a trained model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from talkinghead.config import ConfigError, preset
from talkinghead.landmarks.mouth_prior import mouth_prior, polygon_mask
from talkinghead.models.source_choice import choose_sources
from talkinghead.models.warp_generator import WarpGenerator, WarpSources, identity_grid, sample

SIZE = 64
pytestmark = pytest.mark.usefixtures("one_thread")


# --- the source rule ---------------------------------------------------------------------------------------------

def test_the_nearest_rule_gives_the_nearest_source_all_the_weight() -> None:
    chosen, weights = choose_sources(np.array([0.3, 0.1, 0.2]), 2, "nearest")
    assert chosen.tolist() == [1, 2] and weights.tolist() == [1.0, 0.0]


def test_smooth_weights_sum_to_one_favour_the_nearer_and_split_a_tie() -> None:
    chosen, weights = choose_sources(np.array([0.3, 0.1, 0.12, 0.5]), 2, "smooth", 4.0)
    assert chosen.tolist() == [1, 2]
    assert weights.sum() == pytest.approx(1.0) and weights[0] > weights[1] > 0
    _, tie = choose_sources(np.array([0.2, 0.2, 0.5]), 2, "smooth", 4.0)
    np.testing.assert_allclose(tie, [0.5, 0.5], atol=1e-6)
    _, alone = choose_sources(np.array([0.2]), 2, "smooth", 4.0)  # T = 1: one source, weight 1
    assert alone.tolist() == [1.0]


def test_smooth_weights_move_continuously_when_the_nearest_source_changes() -> None:
    """Sweep a driver past three sources: under the nearest rule the rendered mix (weights over all T) jumps from
    one source to the next; under the smooth rule every step changes it by little, also when a source enters or
    leaves the N nearest (it enters and leaves at weight 0)."""
    positions = np.array([0.0, 1.0, 2.0, 3.5])

    def mix(driver: float, rule: str) -> np.ndarray:
        distances = np.abs(positions - driver) + 0.05
        chosen, weights = choose_sources(distances, 2, rule, 4.0)
        full = np.zeros(positions.size)
        full[chosen] = weights
        return full

    drivers = np.linspace(0.0, 3.5, 701)
    for rule, bound in (("nearest", None), ("smooth", 0.05)):
        steps = [np.abs(mix(b, rule) - mix(a, rule)).sum() for a, b in zip(drivers[:-1], drivers[1:], strict=True)]
        if bound is None:
            assert max(steps) >= 1.9  # a switch hands every pixel to another source at once
        else:
            assert max(steps) < bound


def test_the_rule_refuses_what_it_cannot_use() -> None:
    with pytest.raises(ValueError, match="not finite"):
        choose_sources(np.array([0.1, np.nan]), 1, "smooth")
    with pytest.raises(ValueError, match="source_blend must be one of"):
        choose_sources(np.array([0.1]), 1, "softest")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="source_blend"):
        dataclasses.replace(preset("warp-tiny").model, source_blend="softest").validate()  # type: ignore[arg-type]


# --- the mouth prior ---------------------------------------------------------------------------------------------

def _face(gap: float) -> np.ndarray:
    """68 landmarks of a simple face at 64 px whose inner lips are ``gap`` px apart (points 60-67)."""
    rng = np.random.default_rng(0)
    points = rng.uniform(20, 44, (68, 2)).astype(np.float32)
    points[36:42] = [[20, 24], [22, 23], [24, 23], [26, 24], [24, 25], [22, 25]]  # eyes: inter-ocular ~20 px
    points[42:48] = [[38, 24], [40, 23], [42, 23], [44, 24], [42, 25], [40, 25]]
    mouth_y = 44.0
    outer = [[24, 44], [27, 41], [30, 40], [32, 41], [34, 40], [37, 41], [40, 44],
             [37, 48], [34, 49], [32, 49], [30, 49], [27, 48]]
    points[48:60] = outer
    half = gap / 2
    points[60:68] = [[26, mouth_y], [29, mouth_y - half], [32, mouth_y - half], [35, mouth_y - half], [38, mouth_y],
                     [35, mouth_y + half], [32, mouth_y + half], [29, mouth_y + half]]
    return points


def test_polygon_mask_fills_a_square_at_pixel_centres() -> None:
    square = torch.tensor([[[10.5, 10.5], [20.5, 10.5], [20.5, 20.5], [10.5, 20.5]]])
    mask = polygon_mask(square, 32, 32)[0, 0]
    assert mask.sum() == 100 and mask[11:21, 11:21].all() and not mask[10].any()


def test_the_prior_covers_an_open_driver_mouth_over_a_closed_source_and_not_over_an_open_one() -> None:
    from talkinghead.landmarks.mesh import sampling_grid

    driver, closed, opened = _face(6.0), _face(0.0), _face(5.0)
    inner = polygon_mask(torch.from_numpy(driver)[None, 60:68], SIZE, SIZE).sum()
    assert inner > 20  # the driver's mouth is open

    def prior(source: np.ndarray) -> torch.Tensor:
        grid = torch.from_numpy(sampling_grid(source, driver, SIZE))
        return mouth_prior(torch.from_numpy(driver)[None], torch.from_numpy(source)[None, None], grid[None, None])

    from_closed, from_open = prior(closed), prior(opened)
    assert from_closed.shape == (1, 1, SIZE, SIZE) and float(from_closed.min()) >= 0 and float(from_closed.max()) <= 1
    assert float(from_closed.sum()) > 0.6 * float(inner)  # no source shows an interior: synthesis owns it
    assert float(from_open.sum()) < 0.25 * float(inner)  # the open source's interior covers it


# --- the generator with weights, prior and the flow bound --------------------------------------------------------

def _sources(batch: int, k: int, seed: int = 0) -> WarpSources:
    generator = torch.Generator().manual_seed(seed)
    grids = identity_grid(SIZE, SIZE)[None, None] + 0.05 * torch.randn(batch, k, SIZE, SIZE, 2, generator=generator)
    return WarpSources(images=torch.rand(batch, k, 3, SIZE, SIZE, generator=generator) * 2 - 1,
                       landmark_images=torch.rand(batch, k, 3, SIZE, SIZE, generator=generator) * 2 - 1,
                       grids=grids, distances=torch.rand(batch, k, generator=generator))


def _generator(**changes) -> WarpGenerator:
    torch.manual_seed(0)
    return WarpGenerator(dataclasses.replace(preset("warp-tiny").model, **changes)).eval()


def test_untrained_output_is_the_rule_weighted_mix_of_mesh_warps() -> None:
    generator = _generator(source_blend="smooth")
    sources = _sources(2, 3, seed=4)
    sources.weights = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.5, 0.5]])
    y = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    psi = generator.project(torch.randn(2, generator.cfg.embedding_dim))
    with torch.no_grad():
        output = generator(y, psi, sources)
    warps = sample(sources.images.flatten(0, 1), sources.grids.flatten(0, 1)).unflatten(0, (2, 3))
    expected = (sources.weights[:, :, None, None, None] * warps).sum(1)
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=0)
    one_hot = torch.zeros(2, 3).scatter_(1, sources.distances.argmin(1, keepdim=True), 1.0)
    sources.weights = one_hot
    with torch.no_grad():  # one-hot weights are the nearest rule exactly
        torch.testing.assert_close(generator(y, psi, sources),
                                   generator(y, psi, dataclasses.replace(sources, weights=None)), atol=0, rtol=0)


def test_the_prior_hands_its_pixels_to_synthesis_from_the_start() -> None:
    generator = _generator(synthesis_prior=True)
    sources = _sources(1, 2, seed=2)
    y = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    psi = generator.project(torch.randn(1, generator.cfg.embedding_dim))
    with pytest.raises(ValueError, match="carry no prior"):
        generator(y, psi, sources)
    prior = torch.zeros(1, 1, SIZE, SIZE)
    prior[..., 20:30, 20:40] = 1.0
    sources.prior = prior
    with torch.no_grad():
        parts = generator.render(y, psi, sources)
    torch.testing.assert_close(parts["mask"], 1 - prior)  # zero-initialized mask head: mask = 1 − prior
    torch.testing.assert_close(parts["output"][..., 20:30, 20:40], parts["synthesis"][..., 20:30, 20:40])
    torch.testing.assert_close(parts["output"][..., :20, :], parts["mixed_warp"][..., :20, :])


def test_the_prior_mask_setting_leaves_synthesis_only_where_the_prior_says() -> None:
    """``model.synthesis_mask=prior``: mask = 1 − prior exactly even when the learned head would blend synthesis in
    elsewhere; ``learned`` (the default) lets the head act. The same weights, switched at inference."""
    learned = _generator(synthesis_prior=True)
    with torch.no_grad():
        learned.synthesis.mask_head.bias.fill_(0.3)  # a trained head: 30 % synthesis everywhere
    prior_only = _generator(synthesis_prior=True, synthesis_mask="prior")
    prior_only.load_state_dict(learned.state_dict())
    sources = _sources(1, 2, seed=2)
    prior = torch.zeros(1, 1, SIZE, SIZE)
    prior[..., 20:30, 20:40] = 1.0
    sources.prior = prior
    y = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    psi = learned.project(torch.randn(1, learned.cfg.embedding_dim))
    with torch.no_grad():
        with_head, without = learned.render(y, psi, sources), prior_only.render(y, psi, sources)
    assert float(with_head["mask"][..., :20, :].max()) < 0.75  # the head blends synthesis in outside the prior
    torch.testing.assert_close(without["mask"], 1 - prior)
    torch.testing.assert_close(without["output"][..., :20, :], without["mixed_warp"][..., :20, :])
    torch.testing.assert_close(without["synthesis"], with_head["synthesis"])
    with pytest.raises(ConfigError, match="synthesis_mask"):
        dataclasses.replace(preset("warp-tiny").model, synthesis_mask="none").validate()


def test_the_residual_flow_stays_within_its_limit() -> None:
    limit = 2.0
    generator = _generator(warp_flow_limit=limit)
    with torch.no_grad():
        generator.flow_head.bias.fill_(5.0)  # a head gone wild: 5 grid units = 160 px at 64
    sources = _sources(1, 2, seed=1)
    y = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    with torch.no_grad():
        parts = generator.render(y, generator.project(torch.randn(1, generator.cfg.embedding_dim)), sources)
    pixels = parts["residual_flow"].abs() * SIZE / 2
    assert float(pixels.max()) <= limit + 1e-4 and float(pixels.max()) > 0.99 * limit


# --- episodes ----------------------------------------------------------------------------------------------------

def one_video_dataset(root, points: np.ndarray, size: int, rng: np.random.Generator):
    """A dataset folder at ``root`` of one video ("a/v1") with landmarks [T, 68, 2] and random frames from ``rng``."""
    from talkinghead.data.index import build_index, encode_frame, write_video_folder

    images = [encode_frame(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(len(points))]
    write_video_folder(root / "videos" / "a" / "v1", images, points, {"key": "a/v1", "identity": "a",
                                                                     "image_size": size})
    build_index(root, {"image_size": size, "crop": {}, "landmark_backend": "test"})
    return root


def _mouth_dataset(root, frames: int = 16):
    rng = np.random.default_rng(1)
    gaps = [0.0 if t % 2 == 0 else 6.0 for t in range(frames)]  # closed and open frames alternate
    points = np.stack([_face(g) + rng.normal(0, 0.2, (68, 2)).astype(np.float32) for g in gaps])
    points[:, 60:68] = np.stack([_face(g)[60:68] for g in gaps])  # the lips exactly as drawn
    return one_video_dataset(root, points, SIZE, rng)


def test_gap_episodes_put_an_open_mouth_over_closed_sources_and_the_generator_takes_the_nearest(tmp_path) -> None:
    from talkinghead.data.episodes import EpisodeDataset
    from talkinghead.metrics.mouth import MOUTH_CLOSED, MOUTH_OPEN, mouth_openness

    root = _mouth_dataset(tmp_path)
    dataset = EpisodeDataset(root, SIZE, frames_per_episode=4, seed=0, warp_sources=True, gap_fraction=1.0,
                             generator_sources=2, source_blend="smooth", synthesis_prior=True)
    for epoch in range(4):
        dataset.set_epoch(epoch)
        item = dataset[0]
        assert int(item["gap"]) == 1
        assert mouth_openness(item["target_landmarks"].numpy()) > MOUTH_OPEN
        assert (mouth_openness(item["source_landmarks"].numpy()) < MOUTH_CLOSED).all()
        distances = item["source_distances"].numpy()
        assert (np.diff(distances) >= 0).all()  # nearest first
        weights = item["source_weights"].numpy()
        assert weights[2:].sum() == 0 and weights[:2].sum() == pytest.approx(1.0)
        assert item["synthesis_prior"].shape == (1, SIZE, SIZE) and float(item["synthesis_prior"].sum()) > 10
    random = EpisodeDataset(root, SIZE, frames_per_episode=4, seed=0, warp_sources=True)
    assert int(random[0]["gap"]) == 0 and "source_weights" not in random[0]


# --- training: the lip discriminator, the ramp, the gradient norms -----------------------------------------------

def test_the_ramp_waits_then_rises_linearly() -> None:
    from talkinghead.training.mouth import adversarial_ramp

    assert [adversarial_ramp(s, 10, 4) for s in (0, 9, 10, 11, 13, 100)] == [0.0, 0.0, 0.25, 0.5, 1.0, 1.0]
    assert adversarial_ramp(10, 10, 0) == 1.0


def test_the_lip_discriminator_learns_only_in_its_own_update_and_the_gradient_norms_are_logged() -> None:
    from talkinghead.training.mouth import MouthCritic
    from talkinghead.training.steps import gradient_norms

    critic = MouthCritic(SIZE, lr=1e-3, betas=(0.5, 0.999), device=torch.device("cpu"))
    landmarks = torch.from_numpy(_face(6.0))[None].repeat(2, 1, 1)
    real = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    drawn = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    generated = (torch.rand(2, 3, SIZE, SIZE) * 2 - 1).requires_grad_(True)
    before = [p.detach().clone() for p in critic.discriminator.parameters()]
    weights = {"mouth_pixel": 1.0, "lip_adversarial": 1.0, "lip_feature_matching": 1.0, "pixel": 1.0}
    terms = critic.generator_terms(generated, real, drawn, landmarks, weights)
    terms["pixel"] = (generated - real).abs().mean()
    assert set(terms) == {"mouth_pixel", "lip_adversarial", "lip_feature_matching", "pixel"}
    sum(terms.values()).backward(retain_graph=True)
    assert all(p.grad is None for p in critic.discriminator.parameters())  # frozen in G's update
    assert generated.grad is not None and float(generated.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="detach"):
        critic.discriminator_update(real, generated, drawn, landmarks)
    logs = critic.discriminator_update(real, generated.detach(), drawn, landmarks)
    assert logs is not None and "loss/lip_discriminator" in logs
    assert any(not torch.equal(a, b) for a, b in zip(before, critic.discriminator.parameters(), strict=True))
    norms = gradient_norms(terms, weights, generated)
    assert {"grad/pixel", "grad/lip_adversarial", "grad_ratio/lip_adversarial"} <= set(norms)
    torch.testing.assert_close(norms["grad_ratio/mouth_pixel"], norms["grad/mouth_pixel"] / norms["grad/pixel"])
    # the pixel L1's gradient is sign / numel per element: its norm is known exactly
    assert float(norms["grad/pixel"]) == pytest.approx(1 / np.sqrt(generated.numel()), rel=1e-4)


def test_mouth_crops_follow_the_lips() -> None:
    from talkinghead.models.lip_discriminator import mouth_crops

    image = -torch.ones(1, 3, SIZE, SIZE)
    face = _face(6.0)
    image[..., 40:50, 24:41] = 1.0  # the mouth area white, the rest black
    crop = mouth_crops(image, torch.from_numpy(face)[None], 16)
    assert crop.shape == (1, 3, 16, 16)
    assert float(crop[..., 6:10, 6:10].mean()) > 0.9 and float(crop[..., 0, :].mean()) < 0


# --- runtimes and settings ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["torchscript", "onnx"])
def test_runtimes_take_the_weights_and_the_prior(kind: str) -> None:
    from talkinghead.runtime import available, build_runtime

    if not available(kind):
        pytest.skip(f"{kind} is not installed")
    generator = _generator(source_blend="smooth", synthesis_prior=True)
    with torch.no_grad():
        generator.synthesis.mask_head.bias.fill_(0.2)
    sources = _sources(1, 2, seed=3)
    sources.weights = torch.tensor([[0.6, 0.4]])
    sources.prior = torch.zeros(1, 1, SIZE, SIZE)
    sources.prior[..., 30:40, 20:44] = 1
    y = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    psi = generator.project(torch.randn(1, generator.cfg.embedding_dim)).detach()
    with torch.no_grad():
        expected = generator(y, psi, sources)
    run = build_runtime(generator, kind, (y, psi, sources))
    torch.testing.assert_close(run(y, psi, sources), expected, atol=1e-4, rtol=0)
    other = dataclasses.replace(sources, weights=torch.tensor([[0.1, 0.9]]))  # the weights are an input, not baked
    with torch.no_grad():
        torch.testing.assert_close(run(y, psi, other), generator(y, psi, other), atol=1e-4, rtol=0)


def test_set_may_change_how_a_trained_model_runs_but_not_its_networks() -> None:
    import argparse

    from talkinghead.cli_options import TRAINED_MODEL_SECTIONS, add_set_option, check_overrides

    parser = argparse.ArgumentParser()
    add_set_option(parser, sections=TRAINED_MODEL_SECTIONS)
    check_overrides(parser.parse_args(["--set", "model.source_blend=smooth", "--set", "finetune.epochs=3"]))
    with pytest.raises(ConfigError, match="only how the warp generator is run"):
        check_overrides(parser.parse_args(["--set", "model.image_size=256"]))


def test_a_warm_start_may_differ_in_how_it_runs_but_not_in_its_shapes(tmp_path) -> None:
    from talkinghead.checkpoint import CheckpointError, save_checkpoint
    from talkinghead.training.warm_start import read_warm_start

    config = preset("warp-tiny")
    path = save_checkpoint(tmp_path / "w.safetensors", {"x": torch.zeros(1)}, config, kind="warm-start",
                           metadata={})
    run_model = dataclasses.replace(config.model, source_blend="smooth", synthesis_prior=True, warp_flow_limit=3.0)
    read_warm_start(path, expected_model=run_model)
    with pytest.raises(CheckpointError, match="warp_channels"):
        read_warm_start(path, expected_model=dataclasses.replace(config.model, warp_channels=32))
