"""``model.prior_input`` (stop 35): the warp generator's synthesis branch sees the synthesis prior's three parts
(mouth, stretch, lids), so it can tell a mouth to open from a lid to close. The parts and their maximum, the exact
widening of a warm start made without them, the gradient that reaches the new channels from the first step, the
loader's parts, and the settings that refuse a wrong use."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from talkinghead.checkpoint import CheckpointError, load_model_state, save_checkpoint
from talkinghead.config import ConfigError, apply_overrides, preset
from talkinghead.landmarks.geometry import close_eyes, open_mouth
from talkinghead.landmarks.lid_prior import lid_prior
from talkinghead.landmarks.mesh import sampling_grid
from talkinghead.landmarks.mouth_prior import mouth_prior
from talkinghead.landmarks.stretch_prior import stretch_prior
from talkinghead.landmarks.synthesis_prior import PRIOR_PARTS, synthesis_prior
from talkinghead.models import build_generator
from talkinghead.models.warp_generator import WarpSources, identity_grid
from talkinghead.training.warm_start import read_warm_start

FACE = 128
SIZE = 64
pytestmark = pytest.mark.usefixtures("one_thread")


def _face(size: int = FACE) -> np.ndarray:
    from talkinghead.data.synthetic.identity import Identity
    from talkinghead.data.synthetic.motion import Motion
    from talkinghead.data.synthetic.render import render_frame

    _, points = render_frame(Identity.sample(1), Motion.sample(1, 1).frame(0), size)
    return np.asarray(points, np.float32)


def _blinking_talker(points: np.ndarray) -> np.ndarray:
    """``points`` with the mouth opened wide and both eyes shut."""
    return close_eyes(open_mouth(points, 0.5), 0.0)


def test_the_parts_are_mouth_stretch_and_lids_and_the_prior_is_their_maximum() -> None:
    source = _face()
    driver = _blinking_talker(source)
    target_points, source_points = torch.from_numpy(driver)[None], torch.from_numpy(source)[None, None]
    grid = torch.from_numpy(sampling_grid(source, driver, FACE))[None, None]
    parts = synthesis_prior(target_points, source_points, grid, stretch_limit=1.5, lids=True, parts=True)
    assert parts.shape == (1, len(PRIOR_PARTS), FACE, FACE) and PRIOR_PARTS == ("mouth", "stretch", "lids")
    torch.testing.assert_close(parts[:, 0:1], mouth_prior(target_points, source_points, grid))
    torch.testing.assert_close(parts[:, 1:2], stretch_prior(grid, 1.5))
    torch.testing.assert_close(parts[:, 2:3], lid_prior(target_points, source_points, FACE, FACE))
    for channel in range(3):  # the driver's open mouth and shut eyes: every part has pixels of its own
        assert float(parts[0, channel].sum()) > 10, PRIOR_PARTS[channel]
    combined = synthesis_prior(target_points, source_points, grid, stretch_limit=1.5, lids=True)
    assert torch.equal(combined, parts.amax(1, keepdim=True))
    off = synthesis_prior(target_points, source_points, grid, parts=True)  # a part that is off is 0
    assert float(off[:, 1:].abs().max()) == 0.0 and torch.equal(off[:, 0:1], parts[:, 0:1])


def _config(prior_input: bool):
    return apply_overrides(preset("warp-tiny"), ["model.synthesis_prior=true", "model.lid_prior=true",
                                                 "model.source_blend=smooth",
                                                 f"model.prior_input={str(prior_input).lower()}"])


def _sources(parts: torch.Tensor, b: int = 2, k: int = 2) -> tuple[torch.Tensor, WarpSources]:
    generator = torch.Generator().manual_seed(1)

    def rand(*shape):
        return torch.rand(*shape, generator=generator) * 2 - 1

    grids = identity_grid(SIZE, SIZE)[None, None] + 0.05 * torch.randn(b, k, SIZE, SIZE, 2, generator=generator)
    weights = torch.tensor([[0.7, 0.3]] * b)
    return rand(b, 3, SIZE, SIZE), WarpSources(rand(b, k, 3, SIZE, SIZE), rand(b, k, 3, SIZE, SIZE), grids,
                                               torch.rand(b, k, generator=generator), weights=weights, prior=parts)


def _parts(b: int = 2) -> torch.Tensor:
    parts = torch.zeros(b, 3, SIZE, SIZE)
    parts[:, 0, 40:50, 20:44] = 1.0  # a mouth
    parts[:, 2, 20:26, 12:28] = 0.8  # a lid
    return parts


def test_a_warm_start_without_the_parts_widens_to_the_same_output(tmp_path) -> None:
    torch.manual_seed(0)
    old_config, new_config = _config(False), _config(True)
    old = build_generator(old_config.model)
    with torch.no_grad():  # a synthesis branch whose output and mask matter
        old.synthesis.mask_head.weight.normal_(0, 0.02)
    path = save_checkpoint(tmp_path / "warm.safetensors",
                           {f"generator.{name}": t for name, t in old.state_dict().items()}, old_config,
                           kind="warm-start")
    checkpoint, _ = read_warm_start(path, expected_model=new_config.model)
    new = build_generator(new_config.model)
    assert new.synthesis.down[0].conv1.weight.shape[1] == 6 + len(PRIOR_PARTS)
    load_model_state(new, checkpoint.tensors, prefix="generator.", source=path)
    assert float(new.synthesis.down[0].conv1.weight.detach()[:, 6:].abs().max()) == 0.0
    parts = _parts()
    landmarks, with_parts = _sources(parts)
    _, with_prior = _sources(parts.amax(1, keepdim=True))
    psi = old.project(torch.randn(2, old_config.model.embedding_dim))
    for mode in (old.eval, old.train):  # cached and power-iterated spectral norms alike; float sums reordered
        mode()
        new.train(old.training)
        with torch.no_grad():
            expected = old.render(landmarks, psi, with_prior)
            found = new.render(landmarks, psi, with_parts)
        torch.testing.assert_close(found["output"], expected["output"], rtol=0, atol=1e-5)
        torch.testing.assert_close(found["synthesis"], expected["synthesis"], rtol=0, atol=1e-5)
        torch.testing.assert_close(found["prior"], expected["prior"])


def test_the_new_channels_learn_from_the_first_step_and_then_tell_mouth_from_lid() -> None:
    torch.manual_seed(0)
    config = _config(True)
    generator = build_generator(config.model)
    parts = _parts()
    landmarks, sources = _sources(parts)
    psi = generator.project(torch.randn(2, config.model.embedding_dim))
    rendered = generator.render(landmarks, psi, sources)
    (rendered["output"] * parts.amax(1, keepdim=True)).square().mean().backward()
    conv = generator.synthesis.down[0].conv1
    assert float(conv.weight.grad[:, 6:].abs().sum()) > 0  # zero weights, a live gradient
    with torch.no_grad():
        conv.weight[:, 6:].normal_(0, 0.1)
        as_mouth = parts.clone()
        as_mouth[:, 0], as_mouth[:, 2] = parts.amax(1), 0.0  # the same pixels, called mouth
        _, relabelled = _sources(as_mouth)
        lid = (slice(None), slice(None), slice(20, 26), slice(12, 28))
        first = generator.render(landmarks, psi, sources)
        second = generator.render(landmarks, psi, relabelled)
    torch.testing.assert_close(first["prior"], second["prior"])  # the same blend
    assert float((first["synthesis"][lid] - second["synthesis"][lid]).abs().mean()) > 1e-3  # another painting


def test_the_settings_refuse_parts_without_the_prior_and_a_prior_without_its_parts(tmp_path) -> None:
    with pytest.raises(ConfigError, match="prior_input"):
        apply_overrides(preset("warp-tiny"), ["model.prior_input=true"]).validate()
    generator = build_generator(_config(True).model)
    landmarks, sources = _sources(_parts().amax(1, keepdim=True))
    with pytest.raises(ValueError, match="parts=True"):
        generator.render(landmarks, generator.project(torch.zeros(2, _config(True).model.embedding_dim)), sources)
    with pytest.raises(ValueError, match="WarpSources.prior has shape"):
        _sources(torch.zeros(2, 2, SIZE, SIZE))[1].check(2, SIZE, SIZE)
    trained = save_checkpoint(tmp_path / "with-parts.safetensors",
                              {f"generator.{n}": t for n, t in generator.state_dict().items()}, _config(True),
                              kind="warm-start")
    with pytest.raises(CheckpointError, match="prior_input=true"):
        read_warm_start(trained, expected_model=_config(False).model)


def test_the_loader_and_fine_tuning_pairs_carry_the_parts_when_asked(tmp_path) -> None:
    from tests.test_issue25_machinery import one_video_dataset

    from talkinghead.data.episodes import EpisodeDataset
    from talkinghead.training.finetune_pairs import with_rule

    rng = np.random.default_rng(3)
    face = _face(SIZE)
    points = np.stack([(_blinking_talker(face) if t % 3 == 0 else face) + rng.normal(0, 0.1, (68, 2)).astype(
        np.float32) for t in range(12)])
    root = one_video_dataset(tmp_path, points, SIZE, rng)
    common = dict(frames_per_episode=3, seed=0, warp_sources=True, generator_sources=2, source_blend="smooth",
                  synthesis_prior=True, lid_prior=True, eye_gap_fraction=1.0)
    item = EpisodeDataset(root, SIZE, prior_parts=True, **common)[0]
    plain = EpisodeDataset(root, SIZE, **common)[0]
    assert item["synthesis_prior"].shape == (3, SIZE, SIZE) and plain["synthesis_prior"].shape == (1, SIZE, SIZE)
    torch.testing.assert_close(item["synthesis_prior"].amax(0, keepdim=True), plain["synthesis_prior"])
    assert float(item["synthesis_prior"][2].sum()) > 5  # the blink's lids
    with pytest.raises(ValueError, match="need synthesis_prior"):
        EpisodeDataset(root, SIZE, frames_per_episode=3, warp_sources=True, prior_parts=True)

    source = _face()
    grid = torch.from_numpy(sampling_grid(source, _blinking_talker(source), FACE))[None, None]
    batch = {"target_landmarks": torch.from_numpy(_blinking_talker(source))[None],
             "source_landmarks": torch.from_numpy(source)[None, None], "source_grids": grid}
    model = dataclasses.replace(_config(True).model, image_size=FACE)
    parts = with_rule(dict(batch), model, np.ones((1, 1)))["synthesis_prior"]
    assert parts.shape == (1, 3, FACE, FACE)
    torch.testing.assert_close(parts, synthesis_prior(batch["target_landmarks"], batch["source_landmarks"], grid,
                                                      torch.ones(1, 1), lids=True, parts=True))


def test_the_hole_hides_the_warp_from_the_synthesis_branch_where_the_lids_are() -> None:
    """``model.prior_hole=lids``: where the lid part is 1 the branch sees 0 (mid-grey) for the warp, whatever the
    sources show there; ``none`` sees it. The setting needs the parts as input."""
    torch.manual_seed(0)
    parts = torch.zeros(2, 3, SIZE, SIZE)
    parts[:, 2] = 1.0  # a lid over the whole frame
    outputs = {}
    for hole in ("none", "lids", "all"):
        config = apply_overrides(_config(True), [f"model.prior_hole={hole}"])
        torch.manual_seed(0)
        generator = build_generator(config.model).eval()
        psi = generator.project(torch.randn(2, config.model.embedding_dim))
        landmarks, sources = _sources(parts)
        other = dataclasses.replace(sources, images=-sources.images)  # other sources: another warp everywhere
        with torch.no_grad():
            outputs[hole] = [generator.render(landmarks, psi, s)["synthesis"] for s in (sources, other)]
    assert float((outputs["none"][0] - outputs["none"][1]).abs().mean()) > 1e-3
    for hole in ("lids", "all"):
        torch.testing.assert_close(outputs[hole][0], outputs[hole][1])
    mouth = torch.zeros(2, 3, SIZE, SIZE)
    mouth[:, 0] = 1.0  # the mouth part is a hole for "all" only
    config = apply_overrides(_config(True), ["model.prior_hole=lids"])
    generator = build_generator(config.model).eval()
    psi = generator.project(torch.randn(2, config.model.embedding_dim))
    landmarks, sources = _sources(mouth)
    with torch.no_grad():
        seen = [generator.render(landmarks, psi, s)["synthesis"]
                for s in (sources, dataclasses.replace(sources, images=-sources.images))]
    assert float((seen[0] - seen[1]).abs().mean()) > 1e-3
    with pytest.raises(ConfigError, match="prior_hole"):
        apply_overrides(_config(False), ["model.prior_hole=lids"]).validate()


def test_the_surround_fill_spreads_the_skin_around_the_hole_into_it() -> None:
    """``model.prior_hole_fill=surround``: inside a lid hole the branch sees the colour around it, not grey; outside
    the hole it sees the warp."""
    config = apply_overrides(_config(True), ["model.prior_hole=lids", "model.prior_hole_fill=surround"])
    generator = build_generator(config.model)
    warp = torch.zeros(1, 3, SIZE, SIZE)
    warp[:, 0], warp[:, 1], warp[:, 2] = 0.4, -0.2, -0.5  # skin everywhere
    warp[:, :, 20:26, 12:28] = 1.0  # a white eye where the hole is
    hole = torch.zeros(1, 1, SIZE, SIZE)
    hole[:, :, 19:27, 11:29] = 1.0
    seen = generator._fill_hole(warp, hole)
    torch.testing.assert_close(seen[:, :, 19:27, 11:29], warp[:, :, :19, :11].mean((2, 3))[..., None, None].expand(
        -1, -1, 8, 18), atol=1e-4, rtol=0)  # the skin, not the white eye and not grey
    outside = (1 - hole).bool().expand_as(warp)
    torch.testing.assert_close(seen[outside], warp[outside])
    grey = build_generator(apply_overrides(_config(True), ["model.prior_hole=lids"]).model)._fill_hole(warp, hole)
    assert float(grey[:, :, 19:27, 11:29].abs().max()) == 0.0


def test_lid_colour_match_moves_the_painted_lid_to_the_skin_s_mean_and_keeps_its_shading() -> None:
    """``model.lid_colour_match``: inside the lid part the synthesis' weighted mean colour becomes the skin's around
    the lid; its shading (S minus its mean) and every pixel outside the part are kept. Needs the parts and lids."""
    config = apply_overrides(_config(True), ["model.lid_colour_match=true"])
    generator = build_generator(config.model)
    skin = torch.tensor([0.4, -0.2, -0.5])[None, :, None, None]
    warp = skin.expand(1, 3, SIZE, SIZE).clone()
    warp[:, :, 20:26, 12:28] = 1.0  # the open eye the mesh squeezed there: not skin
    lids = torch.zeros(1, 1, SIZE, SIZE)
    lids[:, :, 19:27, 11:29] = 1.0
    painted = torch.full((1, 3, SIZE, SIZE), 0.6)  # a pink lid ...
    painted[:, :, 23, 11:29] = -0.8  # ... with a dark lash line
    matched = generator._match_lid_colour(painted, warp, lids)
    inside = lids.bool().expand_as(painted)
    torch.testing.assert_close(matched[:, :, 19:27, 11:29].mean((2, 3)), skin[:, :, 0, 0], atol=1e-4, rtol=0)
    torch.testing.assert_close(matched[inside] - painted[inside],
                               (matched - painted)[:, :, 19, 11][..., None, None].expand(-1, -1, 8, 18).flatten())
    torch.testing.assert_close(matched[~inside], painted[~inside])
    with pytest.raises(ConfigError, match="lid_colour_match"):
        apply_overrides(preset("warp-tiny"), ["model.synthesis_prior=true", "model.prior_input=true",
                                              "model.lid_colour_match=true"]).validate()
