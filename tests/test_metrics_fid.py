"""Fréchet distance against a direct scipy computation; FID is 'unavailable' (never a number) without weights;
KID against its definition; the delete-one-video jackknife against the spread over fresh draws."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from talkinghead.metrics import fid
from talkinghead.metrics.fid import (
    FidResult,
    compute_fid,
    feature_statistics,
    frechet_distance,
    frechet_distance_change_interval,
    frechet_distance_interval,
    frechet_distance_low_rank,
    frechet_distance_of_features,
    jackknife_interval,
    kernel_distance,
    kernel_distance_interval,
)


def _direct(mu1, sigma1, mu2, sigma2) -> float:
    root = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1 + sigma2 - 2 * root))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_distance_matches_direct_computation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    dim = 24
    real = rng.normal(size=(400, dim))
    fake = rng.normal(size=(300, dim)) @ rng.normal(size=(dim, dim)) * 0.3 + rng.normal(size=dim)
    stats_real, stats_fake = feature_statistics(real), feature_statistics(fake)
    expected = _direct(*stats_real, *stats_fake)
    assert frechet_distance(*stats_real, *stats_fake) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(*stats_real, *stats_real) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_one_dimensional_closed_form() -> None:
    # N(1, 2²) vs N(4, 3²): (1 - 4)² + (2 - 3)² = 10
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([4.0]), np.array([[9.0]])) \
        == pytest.approx(10.0, abs=1e-12)


def _images() -> list[np.ndarray]:
    return [np.full((32, 32, 3), v, np.uint8) for v in (0, 100, 200)]


def _assert_unavailable(result: FidResult, words: str) -> None:
    assert result.value is None and not result.available
    assert words in result.reason
    assert result.to_json()["value"] is None and words in result.to_json()["unavailable"]


def test_fid_unavailable_without_the_package(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pytorch_fid", None)  # import fails as if not installed
    _assert_unavailable(compute_fid(_images(), _images()), "pytorch-fid")


def test_fid_unavailable_without_inception_weights(monkeypatch, tmp_path) -> None:
    """pytorch-fid present (a stand-in module) but no weights file anywhere and no download allowed."""
    package = types.ModuleType("pytorch_fid")
    package.inception = types.ModuleType("pytorch_fid.inception")
    monkeypatch.setitem(sys.modules, "pytorch_fid", package)
    monkeypatch.setitem(sys.modules, "pytorch_fid.inception", package.inception)
    monkeypatch.setattr(fid, "default_weights_path", lambda: tmp_path / fid.FID_WEIGHTS_FILE)
    _assert_unavailable(compute_fid(_images(), _images()), "no FID Inception weights")
    _assert_unavailable(compute_fid(_images(), _images(), weights_path=tmp_path / "absent.pth"), "not found")
    wrong = tmp_path / "wrong.pth"
    wrong.write_bytes(b"not the inception weights")
    _assert_unavailable(compute_fid(_images(), _images(), weights_path=wrong), "sha256")


@pytest.mark.parametrize("rows", [(40, 60), (300, 250)])
def test_low_rank_frechet_distance_is_the_same_distance(rows) -> None:
    """Fewer rows than dimensions (the evaluation's case) and more: the sample-space formula gives the value of the
    covariance formula, and frechet_distance_of_features gives it either way."""
    rng = np.random.default_rng(3)
    dim = 128
    real = rng.normal(size=(rows[0], dim)) * np.linspace(2.0, 0.1, dim)
    fake = rng.normal(size=(rows[1], dim)) * np.linspace(1.0, 0.5, dim) + 0.2
    expected = frechet_distance(*feature_statistics(real), *feature_statistics(fake))
    assert frechet_distance_low_rank(real, fake) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance_of_features(real, fake) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance_low_rank(real, real) == pytest.approx(0.0, abs=1e-9)


def _kid_by_definition(real: np.ndarray, fake: np.ndarray) -> float:
    dim = real.shape[1]
    k = lambda a, b: (a @ b / dim + 1.0) ** 3  # noqa: E731
    n, m = len(real), len(fake)
    within_real = sum(k(real[i], real[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    within_fake = sum(k(fake[i], fake[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    across = sum(k(x, y) for x in real for y in fake) / (n * m)
    return within_real + within_fake - 2 * across


def test_kernel_distance_is_the_unbiased_polynomial_mmd() -> None:
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(9, 5)), rng.normal(size=(7, 5)) + 0.5
    assert kernel_distance(real, fake) == pytest.approx(_kid_by_definition(real, fake), rel=1e-12)
    # Unbiased: over fresh draws of one distribution it averages 0 (the biased V-statistic would stay above);
    # a shifted distribution is clearly above.
    same = [kernel_distance(rng.normal(size=(20, 8)), rng.normal(size=(20, 8))) for _ in range(300)]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same))
    assert min(same) < 0 < max(same)
    shifted = kernel_distance(rng.normal(size=(20, 8)), rng.normal(size=(20, 8)) + 1.0)
    assert shifted > 5 * np.std(same)


def test_jackknife_of_a_mean_is_the_standard_error_of_the_group_means() -> None:
    """For the mean of equal groups, the delete-one-group jackknife's se is exactly sd(group means) / sqrt(G)."""
    rng = np.random.default_rng(5)
    values = rng.normal(size=(6, 4)) + rng.normal(size=(6, 1))  # 6 groups of 4
    groups = np.repeat(np.arange(6), 4)
    flat = values.ravel()
    result = jackknife_interval(lambda r, f: float(flat[r].mean()), groups, groups)
    means = values.mean(1)
    assert result["value"] == pytest.approx(flat.mean())
    assert result["se"] == pytest.approx(means.std(ddof=1) / np.sqrt(6), rel=1e-10)
    half = scipy.stats.t.ppf(0.975, 5) * result["se"]
    assert (result["low"], result["high"]) == pytest.approx((flat.mean() - half, flat.mean() + half))
    one = jackknife_interval(lambda r, f: 0.0, np.zeros(4), np.zeros(4))
    assert one["low"] is None and one["se"] is None and one["groups"] == 1


def _videos(rng, basis, scale, shift, videos=12, frames=16):
    """Features of an evaluation in miniature: per video a person (shared by its real and generated frames) and
    frames around it; generated frames shifted, wider, and off by a per-video error (some videos are harder for
    the method). Returns real, fake, the video of each row."""
    dim = len(scale)
    people = rng.normal(size=(videos, dim)) * scale
    errors = rng.normal(size=(videos, dim)) * scale * 0.5
    real = np.concatenate([p + rng.normal(size=(frames, dim)) * scale for p in people]) @ basis.T
    fake = np.concatenate([p + shift + e + rng.normal(size=(frames, dim)) * scale * 1.15
                           for p, e in zip(people, errors, strict=True)]) @ basis.T
    return real + 1.0, fake + 1.0, np.repeat(np.arange(videos), frames)


def test_video_jackknife_matches_the_spread_over_fresh_videos() -> None:
    """The interval's claim: its se is how much FD and KID move with another draw of videos. At 256-d with 12
    videos x 16 frames (fewer rows than dimensions, as in an evaluation) the mean jackknife se was 1.15x (FD) and
    1.00x (KID) the standard deviation over 30 fresh draws (0.82-1.34x over three seeds; leaving out single frames
    instead of videos gave 0.61-0.83x for KID: frames of one video are not independent)."""
    rng = np.random.default_rng(6)
    dim = 256
    scale = 1.0 / np.arange(1, dim + 1) ** 0.4
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    shift = rng.normal(size=dim) * 0.05
    fd, kid, fd_se, kid_se = [], [], [], []
    for _ in range(30):
        real, fake, videos = _videos(rng, basis, scale, shift)
        a = frechet_distance_interval(real, fake, videos, videos)
        b = kernel_distance_interval(real, fake, videos, videos)
        assert a["low"] < a["value"] < a["high"] and b["low"] < b["value"] < b["high"] and a["groups"] == 12
        assert b["value"] == pytest.approx(kernel_distance(real, fake), rel=1e-10)
        fd.append(a["value"])
        kid.append(b["value"])
        fd_se.append(a["se"])
        kid_se.append(b["se"])
    for spread, se in ((np.std(fd, ddof=1), np.mean(fd_se)), (np.std(kid, ddof=1), np.mean(kid_se))):
        assert spread / 1.5 < se < spread * 1.5, (spread, se)


def test_frame_bootstrap_shifts_the_frechet_distance_which_is_why_the_jackknife() -> None:
    """Resampling frames with replacement (not implemented, on purpose): duplicated rows lower the covariances'
    rank and push the bootstrap distances above the estimate, so the percentile interval misses the estimate."""
    rng = np.random.default_rng(7)
    dim = 256
    scale = 1.0 / np.arange(1, dim + 1) ** 0.4
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    real, fake, _ = _videos(rng, basis, scale, rng.normal(size=dim) * 0.05)
    estimate = frechet_distance_low_rank(real, fake)
    picks = [(rng.integers(0, len(real), len(real)), rng.integers(0, len(fake), len(fake))) for _ in range(200)]
    boots = [frechet_distance_low_rank(real[r], fake[f]) for r, f in picks]
    assert np.percentile(boots, 2.5) > estimate


def test_paired_change_interval_is_zero_for_the_same_outputs_and_sees_a_closer_model() -> None:
    """Two models' outputs for the same targets: identical outputs change FD by exactly 0 (every left-out estimate
    too); outputs nearer the truth than the reference's lower it, with an interval below 0 over 8 videos."""
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(8), 12)
    real = rng.normal(size=(96, 16)) + rng.normal(size=(8, 16))[groups]  # videos differ from each other
    reference = real + rng.normal(scale=1.0, size=real.shape)
    closer = real + rng.normal(scale=0.5, size=real.shape)
    same = frechet_distance_change_interval(real, reference.copy(), reference, groups)
    assert same["value"] == pytest.approx(0.0, abs=1e-12) and same["se"] == pytest.approx(0.0, abs=1e-12)
    better = frechet_distance_change_interval(real, closer, reference, groups)
    direct = frechet_distance_of_features(real, closer) / frechet_distance_of_features(real, reference) - 1
    assert better["value"] == pytest.approx(direct) and better["high"] < 0 and better["groups"] == 8
    with pytest.raises(ValueError):
        frechet_distance_change_interval(real, closer[:-1], reference, groups)
