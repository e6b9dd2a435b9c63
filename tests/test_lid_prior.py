"""The lid half of the warp family's synthesis prior (issue 25, item 7: "blinks rendered as lids, not a squashed
eye"): how shut the driver's eye is against each source's, where the source's open eye would lie in the target,
the prior on a real 68-point mesh, its share between sources, the blink episodes that train it, and the settings that
refuse a wrong use."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from talkinghead.config import ConfigError, preset
from talkinghead.landmarks.geometry import close_eyes
from talkinghead.landmarks.lid_prior import LID_FULL, LID_START, closure, eye_aspect_ratio, eye_onto_target, lid_prior
from talkinghead.landmarks.mesh import sampling_grid
from talkinghead.landmarks.mouth_prior import mouth_prior, polygon_mask
from talkinghead.landmarks.synthesis_prior import synthesis_prior

FACE = 128
pytestmark = pytest.mark.usefixtures("one_thread")


def _synthetic_face() -> np.ndarray:
    from talkinghead.data.synthetic.identity import Identity
    from talkinghead.data.synthetic.motion import Motion
    from talkinghead.data.synthetic.render import render_frame

    _, points = render_frame(Identity.sample(1), Motion.sample(1, 1).frame(0), FACE)
    return np.asarray(points, np.float32)


def _shut(points: np.ndarray, eye: slice, keep: float = 0.0) -> np.ndarray:
    """``points`` with one eye's lids moved to ``keep`` of their distance from the corners' line (0: shut)."""
    out = points.copy()
    out[eye] = close_eyes(points, keep)[eye]
    return out


def test_the_eye_aspect_ratio_is_soukupova_and_cech_s() -> None:
    eye = torch.tensor([[0.0, 0.0], [1.0, -1.0], [3.0, -2.0], [4.0, 0.0], [3.0, 1.0], [1.0, 2.0]])
    # (|p1 - p5| + |p2 - p4|) / (2 |p0 - p3|) = (3 + 3) / 8
    assert float(eye_aspect_ratio(eye)) == pytest.approx(6 / 8)
    from talkinghead.metrics.eyes import eye_openness

    face = _synthetic_face()
    both = (float(eye_aspect_ratio(torch.from_numpy(face[36:42]))) + float(eye_aspect_ratio(torch.from_numpy(
        face[42:48])))) / 2
    assert both == pytest.approx(eye_openness(face), rel=1e-5)  # the evaluation's measure, one eye at a time


def test_close_eyes_puts_the_lids_on_the_corners_line_and_keeps_the_rest() -> None:
    face = _synthetic_face()

    def off_line(points: np.ndarray, outer: int, inner: int, lid: int) -> float:
        axis = points[inner] - points[outer]
        normal = np.array([-axis[1], axis[0]]) / np.linalg.norm(axis)
        return float(np.dot(points[lid] - points[outer], normal))

    shut, half = close_eyes(face), close_eyes(face, 0.5)
    for outer, inner, lids in ((36, 39, (37, 38, 40, 41)), (42, 45, (43, 44, 46, 47))):
        for lid in lids:
            assert off_line(face, outer, inner, lid) != pytest.approx(0.0, abs=0.5)
            assert off_line(shut, outer, inner, lid) == pytest.approx(0.0, abs=1e-4)
            assert off_line(half, outer, inner, lid) == pytest.approx(0.5 * off_line(face, outer, inner, lid), abs=1e-4)
    assert float(eye_aspect_ratio(torch.from_numpy(shut[36:42]))) < 0.3 * float(eye_aspect_ratio(
        torch.from_numpy(face[36:42])))
    untouched = [i for i in range(68) if i not in (37, 38, 40, 41, 43, 44, 46, 47)]
    assert np.array_equal(shut[untouched], face[untouched])
    with pytest.raises(ValueError, match="close_eyes"):
        close_eyes(face, 1.5)


def test_closure_ramps_from_the_start_ratio_to_the_full_one() -> None:
    source = torch.tensor(0.3)
    for ratio, expected in ((1.0, 0.0), (LID_START, 0.0), ((LID_START + LID_FULL) / 2, 0.5), (LID_FULL, 1.0),
                            (0.0, 1.0)):
        assert float(closure(source * ratio, source)) == pytest.approx(expected, abs=1e-6), ratio
    assert float(closure(torch.tensor(0.3), torch.tensor(0.1))) == 0.0  # the driver's eye wider: nothing to invent


def test_the_source_eye_is_carried_by_the_similarity_of_its_corners() -> None:
    source = torch.tensor([[0.0, 0.0], [1.0, -1.0], [3.0, -1.0], [4.0, 0.0], [3.0, 1.0], [1.0, 1.0]])
    angle, scale, shift = math.pi / 2, 2.0, torch.tensor([10.0, 20.0])
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    target = (source @ rotation.T) * scale + shift
    target[[1, 2, 4, 5]] = target[[0, 0, 3, 3]]  # only the corners count: the target's lids may be shut
    moved = eye_onto_target(source, target)
    torch.testing.assert_close(moved, (source @ rotation.T) * scale + shift, atol=1e-5, rtol=0)


def test_a_shut_driver_eye_over_open_sources_is_covered_and_an_open_one_is_not() -> None:
    """A real face: the driver's right eye shut, the source's open. The prior covers where the source's open eye
    would lie (more than the driver's own eye line), not the other eye, and nothing when the driver's eye is open."""
    source = _synthetic_face()
    driver = _shut(source, slice(36, 42))
    prior = lid_prior(torch.from_numpy(driver)[None], torch.from_numpy(source)[None, None], FACE, FACE)[0, 0]
    open_eye = polygon_mask(torch.from_numpy(source)[None, 36:42], FACE, FACE)[0, 0] > 0
    assert int(open_eye.sum()) >= 20
    assert float(prior[open_eye].mean()) > 0.9
    other_eye = polygon_mask(torch.from_numpy(source)[None, 42:48], FACE, FACE)[0, 0] > 0
    assert float(prior[other_eye].max()) == 0.0
    assert float(prior.sum()) < 3 * int(open_eye.sum())  # the eye and its lashes, not the face
    same = lid_prior(torch.from_numpy(source)[None], torch.from_numpy(source)[None, None], FACE, FACE)
    assert float(same.max()) == 0.0
    half = lid_prior(torch.from_numpy(_shut(source, slice(36, 42), keep=(LID_START + LID_FULL) / 2))[None],
                     torch.from_numpy(source)[None, None], FACE, FACE)[0, 0]
    assert float(half[open_eye].mean()) == pytest.approx(0.5 * float(prior[open_eye].mean()), abs=0.08)


def test_the_rule_weights_share_the_prior_and_a_shut_source_shows_the_lid() -> None:
    face = _synthetic_face()
    driver = _shut(face, slice(36, 42))
    sources = torch.from_numpy(np.stack([face, _shut(face, slice(36, 42))]))[None]  # open, shut
    open_eye = polygon_mask(torch.from_numpy(face)[None, 36:42], FACE, FACE)[0, 0] > 0
    target = torch.from_numpy(driver)[None]
    first = lid_prior(target, sources, FACE, FACE)[0, 0]  # None: the first (open) source alone
    shared = lid_prior(target, sources, FACE, FACE, torch.tensor([[0.25, 0.75]]))[0, 0]
    assert float(shared[open_eye].mean()) == pytest.approx(0.25 * float(first[open_eye].mean()), rel=1e-4)
    assert float(lid_prior(target, sources, FACE, FACE, torch.tensor([[0.0, 1.0]])).max()) == 0.0


def test_the_synthesis_prior_adds_the_lids_only_when_asked() -> None:
    source = _synthetic_face()
    driver = _shut(source, slice(42, 48))
    target_points, source_points = torch.from_numpy(driver)[None], torch.from_numpy(source)[None, None]
    grid = torch.from_numpy(sampling_grid(source, driver, FACE))[None, None]
    mouth = mouth_prior(target_points, source_points, grid)
    assert torch.equal(synthesis_prior(target_points, source_points, grid), mouth)
    with_lids = synthesis_prior(target_points, source_points, grid, lids=True)
    torch.testing.assert_close(with_lids, torch.maximum(mouth, lid_prior(target_points, source_points, FACE, FACE)))
    assert float((with_lids - mouth).max()) > 0.9


def test_the_settings_refuse_lids_without_the_prior_and_blink_episodes_beyond_the_share_left() -> None:
    config = preset("warp-tiny")
    on = dataclasses.replace(config.model, synthesis_prior=True, lid_prior=True)
    dataclasses.replace(config, model=on).validate()
    with pytest.raises(ConfigError, match="lid_prior"):
        dataclasses.replace(config, model=dataclasses.replace(on, synthesis_prior=False)).validate()
    train = dataclasses.replace(config.train, gap_fraction=0.5, eye_gap_fraction=0.3)
    dataclasses.replace(config, model=on, train=train).validate()
    with pytest.raises(ConfigError, match="eye_gap_fraction"):
        dataclasses.replace(config, train=dataclasses.replace(train, eye_gap_fraction=0.6)).validate()
    with pytest.raises(ConfigError, match="eye_gap_fraction"):
        dataclasses.replace(preset("tiny-64"), train=train).validate()
    for shut in (0.0, 0.95):  # a blink target must be shut somewhat, and under the open sources' 0.9
        with pytest.raises(ConfigError, match="eye_gap_shut"):
            dataclasses.replace(config, train=dataclasses.replace(train, eye_gap_shut=shut)).validate()


def _blink_dataset(root, size: int, frames: int = 12):
    """One video whose frames alternate between the eyes open and both eyes shut (every 3rd frame)."""
    from tests.test_issue25_machinery import one_video_dataset

    rng = np.random.default_rng(3)
    face = _synthetic_face() * (size / FACE)
    shut = _shut(_shut(face, slice(36, 42), keep=0.1), slice(42, 48), keep=0.1)
    points = np.stack([(shut if t % 3 == 0 else face) + rng.normal(0, 0.1, (68, 2)).astype(np.float32)
                       for t in range(frames)])
    return one_video_dataset(root, points, size, rng)


def test_blink_episodes_put_a_shut_eye_over_open_sources_and_carry_the_lid_prior(tmp_path) -> None:
    from talkinghead.data.episodes import EpisodeDataset
    from talkinghead.metrics.eyes import EYES_CLOSED, EYES_OPEN, relative_eye_openness

    size = 64
    root = _blink_dataset(tmp_path, size)
    common = dict(frames_per_episode=3, seed=0, warp_sources=True, generator_sources=2, source_blend="smooth",
                  synthesis_prior=True)
    dataset = EpisodeDataset(root, size, eye_gap_fraction=1.0, lid_prior=True, **common)
    points = np.load(root / "videos" / "a" / "v1" / "landmarks.npy")
    openness = relative_eye_openness(points)
    without = EpisodeDataset(root, size, eye_gap_fraction=1.0, **common)
    for epoch in range(4):
        dataset.set_epoch(epoch)
        without.set_epoch(epoch)
        item = dataset[0]
        assert int(item["gap"]) == 2
        assert openness[int(item["target_frame"])] < EYES_CLOSED
        assert (openness[item["source_frames"].numpy()] > EYES_OPEN).all()
        mouth_only = without[0]["synthesis_prior"]  # the same episode, the mouth's prior alone (a jittered mouth)
        assert bool((item["synthesis_prior"] >= mouth_only - 1e-6).all())
        assert float((item["synthesis_prior"] - mouth_only).sum()) > 10  # the two lids
    random = EpisodeDataset(root, size, **common)
    assert [random.episode_frames(0, e)[1] for e in range(6)] == [
        EpisodeDataset(root, size, eye_gap_fraction=0.0, gap_fraction=0.0, **common).episode_frames(0, e)[1]
        for e in range(6)]
    strict = EpisodeDataset(root, size, eye_gap_fraction=1.0, lid_prior=True, eye_gap_shut=0.3, **common)
    stricter = EpisodeDataset(root, size, eye_gap_fraction=1.0, lid_prior=True, eye_gap_shut=0.02, **common)
    assert int(strict[0]["gap"]) == 2 and openness[int(strict[0]["target_frame"])] < 0.3
    assert int(stricter[0]["gap"]) == 0  # no target that shut (the lids keep 0.1): a random episode
    with pytest.raises(ValueError, match="eye_gap_fraction"):
        EpisodeDataset(root, size, gap_fraction=0.6, eye_gap_fraction=0.5, **common)
    with pytest.raises(ValueError, match="need synthesis_prior"):
        EpisodeDataset(root, size, frames_per_episode=3, warp_sources=True, lid_prior=True)


def test_fine_tuning_pairs_build_the_prior_with_the_model_s_lids() -> None:
    from talkinghead.training.finetune_pairs import with_rule

    source = _synthetic_face()
    driver = _shut(source, slice(36, 42))
    grid = torch.from_numpy(sampling_grid(source, driver, FACE))[None, None]
    batch = {"target_landmarks": torch.from_numpy(driver)[None],
             "source_landmarks": torch.from_numpy(source)[None, None], "source_grids": grid}
    model = dataclasses.replace(preset("warp-128").model, synthesis_prior=True, source_blend="smooth")
    plain = with_rule(dict(batch), model, np.ones((1, 1)))["synthesis_prior"]
    lids = with_rule(dict(batch), dataclasses.replace(model, lid_prior=True), np.ones((1, 1)))["synthesis_prior"]
    torch.testing.assert_close(lids, synthesis_prior(batch["target_landmarks"], batch["source_landmarks"], grid,
                                                     torch.ones(1, 1), lids=True))
    assert float((lids - plain).max()) > 0.9
