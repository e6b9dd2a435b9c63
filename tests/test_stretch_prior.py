"""The stretch half of the warp family's synthesis prior (issue 25, item 2: "where the mesh folds or stretches past a
limit (disocclusion), the blend starts on the synthesis branch, and the loss weights those pixels"): the mesh's
Jacobian, the prior's values on known maps, on a real mesh (an eye that opens over a closed source eye), its
combination with the mouth's, the loss that weights its pixels, and the settings that refuse a wrong use."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from talkinghead import losses
from talkinghead.config import ConfigError, preset
from talkinghead.landmarks.mesh import identity_grid, sampling_grid
from talkinghead.landmarks.mouth_prior import mouth_prior
from talkinghead.landmarks.stretch_prior import grid_jacobian, smallest_stretch, stretch_prior
from talkinghead.landmarks.synthesis_prior import synthesis_prior

SIZE = 64
pytestmark = pytest.mark.usefixtures("one_thread")


def _grid(map_pixels) -> torch.Tensor:
    """[1, 1, S, S, 2] grid_sample grid of a map from target pixel (x, y) to source pixel, pixel centres at
    integers (align_corners=False)."""
    ys, xs = torch.meshgrid(torch.arange(SIZE, dtype=torch.float32), torch.arange(SIZE, dtype=torch.float32),
                            indexing="ij")
    sx, sy = map_pixels(xs, ys)
    return torch.stack([(2 * sx + 1) / SIZE - 1, (2 * sy + 1) / SIZE - 1], dim=-1)[None, None]


def test_the_jacobian_of_a_known_affine_map_is_its_matrix() -> None:
    grid = _grid(lambda x, y: (0.5 * x + 0.25 * y + 3, -0.5 * y + 40))
    jacobian = grid_jacobian(grid)[0, 0]  # [S, S, 2, 2]
    expected = torch.tensor([[0.5, 0.25], [0.0, -0.5]])
    torch.testing.assert_close(jacobian[10, 10], expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(jacobian[0, SIZE - 1], expected, atol=1e-4, rtol=0)  # one-sided at the edges
    sigma, det = smallest_stretch(jacobian)
    singular = torch.linalg.svdvals(expected)
    assert float(sigma[10, 10]) == pytest.approx(float(singular.min()), abs=1e-4)
    assert float(det[10, 10]) == pytest.approx(-0.25, abs=1e-4)


def test_the_identity_and_a_shrinking_map_give_no_prior() -> None:
    identity = torch.from_numpy(identity_grid(SIZE, SIZE))[None, None]
    assert float(stretch_prior(identity, 1.5).abs().max()) == 0.0
    shrink = _grid(lambda x, y: (2 * x - 20, 2 * y - 20))  # the target shows a source region smaller: no sliver
    assert float(stretch_prior(shrink, 1.5).max()) == 0.0


def test_magnification_ramps_from_the_limit_to_twice_it_along_the_most_stretched_direction() -> None:
    centre = SIZE / 2
    for factor, expected in ((1.8, 0.0), (3.0, 0.5), (4.0, 1.0), (6.0, 1.0)):
        grid = _grid(lambda x, y, f=factor: (x, centre + (y - centre) / f))  # a thin band stretched vertically only
        prior = stretch_prior(grid, 2.0)
        assert float(prior[0, 0, 20:44, 20:44].mean()) == pytest.approx(expected, abs=1e-4), factor


def test_a_fold_is_covered_whatever_its_stretch() -> None:
    mirrored = _grid(lambda x, y: (SIZE - 1 - x, y))  # det < 0, no stretch at all
    assert float(stretch_prior(mirrored, 3.0)[0, 0, 5:-5, 5:-5].min()) == pytest.approx(1.0)


def test_the_rule_weights_share_the_prior_between_sources() -> None:
    stretched = _grid(lambda x, y: (x, SIZE / 2 + (y - SIZE / 2) / 8))
    identity = torch.from_numpy(identity_grid(SIZE, SIZE))[None, None]
    grids = torch.cat([stretched, identity], dim=1)  # [1, 2, S, S, 2]
    prior = stretch_prior(grids, 2.0, torch.tensor([[0.25, 0.75]]))
    assert float(prior[0, 0, 20:44, 20:44].mean()) == pytest.approx(0.25, abs=1e-4)
    assert float(stretch_prior(grids, 2.0)[0, 0, 20:44, 20:44].mean()) == pytest.approx(1.0)  # None: first alone
    with pytest.raises(ValueError, match="magnification > 1"):
        stretch_prior(grids, 1.0)


FACE = 128
"""The real-mesh tests' frame size: an eye is ~15 px wide there."""


def _synthetic_face() -> np.ndarray:
    from talkinghead.data.synthetic.identity import Identity
    from talkinghead.data.synthetic.motion import Motion
    from talkinghead.data.synthetic.render import render_frame

    _, points = render_frame(Identity.sample(1), Motion.sample(1, 1).frame(0), FACE)
    return np.asarray(points, np.float32)


def test_an_eye_opening_over_a_closed_source_eye_is_covered_and_the_same_face_is_not() -> None:
    """A real mesh (68 landmarks + border anchors): the source's right eye is shut (upper lid on the lower), the
    driver's open. What the driver shows inside its eye was a sliver in the source: the prior covers it."""
    from talkinghead.landmarks.mouth_prior import polygon_mask

    driver = _synthetic_face()
    source = driver.copy()
    source[[37, 38], 1] = source[[41, 40], 1]  # dlib 37-38 upper lid onto 41-40 lower lid: the eye closed
    eye = polygon_mask(torch.from_numpy(driver)[None, 36:42], FACE, FACE)[0, 0] > 0
    assert int(eye.sum()) >= 20
    grid = torch.from_numpy(sampling_grid(source, driver, FACE))[None, None]
    same = torch.from_numpy(sampling_grid(driver, driver, FACE))[None, None]
    prior = stretch_prior(grid, 1.5)[0, 0]
    assert float(prior[eye].mean()) > 0.5
    assert float(stretch_prior(same, 1.5).max()) == 0.0
    other_eye = polygon_mask(torch.from_numpy(driver)[None, 42:48], FACE, FACE)[0, 0] > 0
    assert float(prior[other_eye].max()) == 0.0  # the left eye did not move


def test_the_synthesis_prior_is_the_larger_of_the_mouth_and_the_stretch_and_the_mouth_alone_at_limit_zero() -> None:
    driver = _synthetic_face()
    source = driver.copy()
    source[[37, 38], 1] = source[[41, 40], 1]
    source[61:64, 1] = source[[67, 66, 65], 1]  # the source's inner lips closed too
    target_points, source_points = torch.from_numpy(driver)[None], torch.from_numpy(source)[None, None]
    grid = torch.from_numpy(sampling_grid(source, driver, FACE))[None, None]
    mouth = mouth_prior(target_points, source_points, grid)
    assert torch.equal(synthesis_prior(target_points, source_points, grid), mouth)
    combined = synthesis_prior(target_points, source_points, grid, stretch_limit=1.5)
    torch.testing.assert_close(combined, torch.maximum(mouth, stretch_prior(grid, 1.5)))
    assert float((combined - mouth).max()) > 0.5  # the eye: covered by the stretch only


def test_the_prior_pixel_loss_is_the_l1_over_the_prior_as_if_it_filled_the_frame() -> None:
    generated = torch.zeros(2, 3, 8, 8, requires_grad=True)
    real = torch.zeros(2, 3, 8, 8)
    real[0, :, 2:4, 2:4] = 0.5  # wrong by 0.5 inside the prior of frame 0
    real[1] = 1.0  # frame 1 has no prior: its error does not count
    prior = torch.zeros(2, 1, 8, 8)
    prior[0, :, 2:4, 2:4] = 1.0
    loss = losses.prior_pixel_loss(generated, real, prior)
    assert float(loss.detach()) == pytest.approx(0.5)
    loss.backward()
    assert float(generated.grad[1].abs().max()) == 0.0 and float(generated.grad[0, :, 2:4, 2:4].abs().min()) > 0
    assert float(losses.prior_pixel_loss(generated, real, torch.zeros(2, 1, 8, 8)).detach()) == 0.0


def test_the_settings_refuse_a_limit_of_one_and_the_stretch_or_its_loss_without_the_prior() -> None:
    config = preset("warp-tiny")
    on = dataclasses.replace(config.model, synthesis_prior=True, stretch_limit=1.5)
    dataclasses.replace(config, model=on).validate()
    with pytest.raises(ConfigError, match="stretch_limit"):
        dataclasses.replace(config, model=dataclasses.replace(on, stretch_limit=1.0)).validate()
    with pytest.raises(ConfigError, match="needs model.synthesis_prior"):
        dataclasses.replace(config, model=dataclasses.replace(on, synthesis_prior=False)).validate()
    with pytest.raises(ConfigError, match="prior_pixel_weight"):
        dataclasses.replace(config, loss=dataclasses.replace(config.loss, prior_pixel_weight=1.0)).validate()


def test_episodes_carry_the_stretch_when_the_limit_is_set(tmp_path) -> None:
    from tests.test_issue25_machinery import _mouth_dataset

    from talkinghead.data.episodes import EpisodeDataset

    root = _mouth_dataset(tmp_path)
    common = dict(frames_per_episode=4, seed=0, warp_sources=True, gap_fraction=1.0, generator_sources=2,
                  source_blend="smooth", synthesis_prior=True)
    mouth_only = EpisodeDataset(root, SIZE, **common)[0]["synthesis_prior"]
    with_stretch = EpisodeDataset(root, SIZE, stretch_limit=1.5, **common)[0]["synthesis_prior"]
    assert bool((with_stretch >= mouth_only - 1e-6).all())
    assert float((with_stretch - mouth_only).max()) > 0.1  # the jittered random face stretches somewhere


def test_in_training_the_prior_pixel_term_is_logged_and_reaches_the_synthesis_branch() -> None:
    """Every other weight at 0: the E/G update is the prior-weighted L1 alone, over the prior the batch carries."""
    from test_train_parts import _warp_batch, _warp_learner

    zero = [f"loss.{name}=0" for name in ("pixel_weight", "adversarial_weight", "feature_matching_weight",
                                          "match_weight", "mobilenet_weight", "vgg19_weight", "vggface_weight")]
    learner = _warp_learner("model.synthesis_prior=true", "loss.prior_pixel_weight=1", *zero)
    batch = _warp_batch()
    batch["synthesis_prior"] = torch.zeros(2, 1, SIZE, SIZE)
    batch["synthesis_prior"][:, :, 20:30, 20:40] = 1.0
    synthesis_before = [p.detach().clone() for p in learner.generator.synthesis.parameters()]
    embedding, generated = learner.generate(batch)
    expected = float(losses.prior_pixel_loss(generated, batch["target_image"], batch["synthesis_prior"]).detach())
    logs = learner.generator_step(batch, embedding, generated)
    assert logs is not None and float(logs["loss/prior_pixel"]) == pytest.approx(expected, rel=1e-5)
    assert expected > 0.1
    assert any(not torch.equal(a, b) for a, b in zip(synthesis_before, learner.generator.synthesis.parameters(),
                                                          strict=True))


def test_fine_tuning_pairs_build_the_prior_with_the_model_s_stretch_limit() -> None:
    from talkinghead.training.finetune_pairs import with_rule

    driver = _synthetic_face()
    source = driver.copy()
    source[[37, 38], 1] = source[[41, 40], 1]
    grid = torch.from_numpy(sampling_grid(source, driver, FACE))[None, None]
    batch = {"target_landmarks": torch.from_numpy(driver)[None],
             "source_landmarks": torch.from_numpy(source)[None, None], "source_grids": grid}
    model = dataclasses.replace(preset("warp-128").model, synthesis_prior=True, source_blend="smooth")
    mouth_only = with_rule(dict(batch), model, np.ones((1, 1)))["synthesis_prior"]
    stretched = with_rule(dict(batch), dataclasses.replace(model, stretch_limit=1.5), np.ones((1, 1)))
    torch.testing.assert_close(stretched["synthesis_prior"],
                               synthesis_prior(batch["target_landmarks"], batch["source_landmarks"], grid,
                                               torch.ones(1, 1), 1.5))
    assert float((stretched["synthesis_prior"] - mouth_only).max()) > 0.5


def test_a_large_frame_is_read_at_the_working_size_and_gives_the_same_prior() -> None:
    """At 256 px the prior is computed on every 2nd pixel and upsampled: the same values as at full size on a
    stretched band, and the same shape as the frame."""
    from talkinghead.landmarks.stretch_prior import WORK_SIZE

    size = 2 * WORK_SIZE
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    for factor, expected in ((1.8, 0.0), (3.0, 0.5), (5.0, 1.0)):
        sy = size / 2 + (ys - size / 2) / factor
        grid = torch.stack([(2 * xs + 1) / size - 1, (2 * sy + 1) / size - 1], dim=-1)[None, None]
        prior = stretch_prior(grid, 2.0)
        assert prior.shape == (1, 1, size, size)
        assert float(prior[0, 0, 40:-40, 40:-40].mean()) == pytest.approx(expected, abs=1e-3), factor
