"""The warp-guided generator: exact mesh-warp start, any K, gradients reach every part, batch plumbing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkinghead.config import preset
from talkinghead.landmarks.mesh import sampling_grid
from talkinghead.models import Generator, build_generator
from talkinghead.models.warp_generator import WarpGenerator, WarpSources, identity_grid, sample

SIZE = 64


def _sources(batch: int, k: int, seed: int = 0, size: int = SIZE) -> WarpSources:
    generator = torch.Generator().manual_seed(seed)
    grids = identity_grid(size, size)[None, None] + 0.05 * torch.randn(batch, k, size, size, 2, generator=generator)
    return WarpSources(images=torch.rand(batch, k, 3, size, size, generator=generator) * 2 - 1,
                       landmark_images=torch.rand(batch, k, 3, size, size, generator=generator) * 2 - 1,
                       grids=grids, distances=torch.rand(batch, k, generator=generator))


def _network(seed: int = 0) -> WarpGenerator:
    torch.manual_seed(seed)
    return WarpGenerator(preset("warp-tiny").model)


@pytest.mark.parametrize("k", [1, 8, 32])
def test_the_untrained_network_is_the_mesh_warp_of_the_nearest_source(k: int) -> None:
    generator = _network()
    sources = _sources(batch=2, k=k, seed=k)
    landmark_images = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    psi = generator.project(torch.randn(2, generator.cfg.embedding_dim))
    output = generator(landmark_images, psi, sources)
    nearest = sources.distances.argmin(1)
    expected = torch.stack([sample(sources.images[b, nearest[b]][None], sources.grids[b, nearest[b]][None])[0]
                            for b in range(2)])
    assert output.shape == (2, 3, SIZE, SIZE)
    assert torch.equal(output, expected)
    if k > 1:  # not vacuous: another source's warp differs
        other = (nearest[0] + 1) % k
        warped_other = sample(sources.images[0, other][None], sources.grids[0, other][None])[0]
        assert (warped_other - expected[0]).abs().max() > 0.1


def test_gradients_reach_every_part_and_a_step_changes_the_output() -> None:
    generator = _network(1)
    sources = _sources(batch=2, k=3, seed=5)
    landmark_images = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    embedding = torch.randn(2, generator.cfg.embedding_dim)
    target = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    parts = {"flow_network": generator.flow_network, "flow_head": generator.flow_head,
             "confidence_head": generator.confidence_head, "gate_head": generator.gate_head,
             "mask_head": generator.synthesis.mask_head, "synthesis": generator.synthesis.down,
             "projection": generator.projection}
    reached = {name: False for name in parts}
    outputs = []
    for _ in range(3):  # zero-initialized heads pass gradients to what is behind them from step 2 on
        optimizer.zero_grad()
        output = generator(landmark_images, generator.project(embedding), sources)
        outputs.append(output.detach())
        (output - target).abs().mean().backward()
        for name, module in parts.items():
            reached[name] |= any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
        optimizer.step()
    assert all(reached.values()), reached
    assert (outputs[1] - outputs[0]).abs().max() > 1e-4
    assert (outputs[2] - outputs[1]).abs().max() > 1e-4
    assert generator(landmark_images, generator.project(embedding), sources).abs().max() <= 1.0


def test_parts_are_convex_mixtures_at_any_step() -> None:
    generator = _network(2)
    with torch.no_grad():
        for head in (generator.flow_head, generator.gate_head, generator.synthesis.mask_head):
            head.weight.normal_(0, 0.3)
    sources = _sources(batch=1, k=4, seed=3)
    parts = generator.render(torch.rand(1, 3, SIZE, SIZE), torch.zeros(1, generator.num_adain_params) +
                             generator.projection.bias, sources)
    torch.testing.assert_close(parts["weights"].sum(1), torch.ones(1, 1, SIZE, SIZE))
    assert (parts["mask"] >= 0).all() and (parts["mask"] <= 1).all()
    assert parts["residual_flow"].abs().max() > 0  # the heads now move the flow
    assert parts["mask"].min() < 1  # and let the synthesis in somewhere


def test_nearest_keeps_the_n_nearest_sources_in_order() -> None:
    sources = _sources(batch=2, k=5, seed=7)
    kept = sources.nearest(2)
    assert kept.count == 2
    for b in range(2):
        order = sources.distances[b].argsort()[:2]
        torch.testing.assert_close(kept.distances[b], sources.distances[b, order])
        assert torch.equal(kept.images[b], sources.images[b, order])
        assert torch.equal(kept.grids[b], sources.grids[b, order])
    assert sources.nearest(9) is sources


def test_numpy_mesh_grid_drives_the_network_like_the_baseline() -> None:
    """The dataset's grids (landmarks/mesh.py) and the network's identity use one convention."""
    landmarks = np.random.default_rng(0).uniform(12, 52, (68, 2)).astype(np.float32)
    grid = torch.from_numpy(sampling_grid(landmarks, landmarks, SIZE))
    torch.testing.assert_close(grid, identity_grid(SIZE, SIZE), rtol=0, atol=1e-6)


def test_from_batch_and_shape_errors() -> None:
    sources = _sources(batch=2, k=3)
    batch = {"source_images": sources.images, "source_landmark_images": sources.landmark_images,
             "source_grids": sources.grids, "source_distances": sources.distances}
    rebuilt = WarpSources.from_batch(batch)
    assert rebuilt.grids is sources.grids
    with pytest.raises(KeyError, match="warp_sources=True"):
        WarpSources.from_batch({"source_images": sources.images})
    generator = _network()
    psi = torch.zeros(1, generator.num_adain_params)
    with pytest.raises(ValueError, match="grids"):
        generator(torch.zeros(2, 3, SIZE, SIZE), psi, WarpSources(sources.images, sources.landmark_images,
                                                                  sources.grids[:, :, :32], sources.distances))


def test_build_generator_chooses_the_family() -> None:
    assert isinstance(build_generator(preset("tiny-64").model), Generator)
    warp = build_generator(preset("warp-tiny").model)
    assert isinstance(warp, WarpGenerator) and warp.needs_sources and not Generator.needs_sources


def test_bounded_clamps_and_passes_only_inward_gradients_at_its_bounds() -> None:
    from talkinghead.models.warp_generator import bounded

    x = torch.tensor([-0.5, 0.0, 0.5, 1.0, 1.5], requires_grad=True)
    assert torch.equal(bounded(x), x.detach().clamp(0, 1))
    (bounded(x) * torch.ones(5)).sum().backward()  # grad +1: descent lowers x
    # inside passes; at/above 1 lowering is inward (passes); at/below 0 lowering is outward (blocked)
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    x.grad = None
    (bounded(x) * -torch.ones(5)).sum().backward()  # grad −1: descent raises x
    assert x.grad.tolist() == [-1.0, -1.0, -1.0, 0.0, 0.0]


def test_a_saturated_mask_leaves_the_synthesis_branch_and_psi_learning() -> None:
    """With the mask pinned at 'keep the warp' (m < 0 everywhere, what the first updates do when the warp beats an
    untrained synthesis), the output is exactly the mixed warp, yet S and ψ still get gradients (ε share), and the
    mask head gets one as soon as the synthesis is the better image at some pixels."""
    generator = _network(2)
    with torch.no_grad():
        generator.synthesis.mask_head.bias.fill_(-1.0)  # m = −1: mask = 1 everywhere
    sources = _sources(batch=2, k=2, seed=3)
    landmark_images = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    psi = generator.project(torch.randn(2, generator.cfg.embedding_dim)).detach().requires_grad_(True)
    parts = generator.render(landmark_images, psi, sources)
    assert torch.equal(parts["output"], parts["mixed_warp"])
    target = parts["synthesis"].detach()  # the synthesis is now the better image everywhere
    (parts["output"] - target).abs().mean().backward()
    assert psi.grad is not None and psi.grad.abs().sum() > 0
    assert sum(p.grad.abs().sum() for p in generator.synthesis.down.parameters()) > 0
    assert generator.synthesis.mask_head.bias.grad.item() < 0  # descent raises m: the mask opens


def _drawn_landmark_image(size: int = SIZE) -> torch.Tensor:
    """A real landmark image (a synthetic head's 68 points drawn as the model sees them) [1, 3, S, S] in [-1, 1]."""
    from talkinghead.data.synthetic import Identity
    from talkinghead.data.synthetic.geometry import frame_landmarks
    from talkinghead.data.synthetic.motion import FramePose
    from talkinghead.landmarks.drawing import landmark_image

    drawn = landmark_image(frame_landmarks(Identity.sample(3), FramePose(yaw=10.0), size), size)
    return torch.from_numpy(drawn).permute(2, 0, 1)[None].float() / 127.5 - 1


@pytest.mark.parametrize("keep", [True, False])
def test_the_nearest_source_alone_supplies_the_landmark_lines(keep: bool) -> None:
    """model.warp_keep_contours: with a learned gate of 0 (mix everywhere), the pixels on the driver's landmark
    lines still come from the nearest source only; away from the lines, and with the option off, the mix rules."""
    import dataclasses

    torch.manual_seed(0)
    generator = WarpGenerator(dataclasses.replace(preset("warp-tiny").model, warp_keep_contours=keep))
    with torch.no_grad():
        generator.gate_head.bias.fill_(5.0)  # g = 5: the learned gate is 0 everywhere
        generator.confidence_head.weight.normal_(0, 0.5)
    y = _drawn_landmark_image()
    sources = _sources(batch=1, k=3, seed=11)
    parts = generator.render(y, generator.projection.bias[None], sources)
    on_lines = (y.amax(1) > 0.5)[0]  # [S, S] pixels of the drawn lines
    far = torch.nn.functional.max_pool2d((y.amax(1, keepdim=True) > -0.99).float(), 11, 1, 5)[0, 0] == 0
    assert on_lines.sum() > 100 and far.sum() > 1000
    nearest = int(sources.distances[0].argmin())
    weights = parts["weights"][0, :, 0]  # [K, S, S]
    if keep:
        keep_map = generator.contour_keep(y)[0, 0]
        assert keep_map[on_lines].min() > 0.6 and keep_map[on_lines].mean() > 0.75 and keep_map[far].max() == 0
        torch.testing.assert_close(parts["gate"][0, 0], keep_map)
        assert weights[nearest][on_lines].mean() > 0.8
    else:
        assert parts["gate"].max() == 0
        assert weights[nearest][on_lines].mean() < 0.7
    assert weights[nearest][far].mean() < 0.7  # away from the lines the learned mix rules either way
