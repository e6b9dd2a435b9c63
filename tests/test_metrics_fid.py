"""Fréchet distance against a direct scipy computation; FID is 'unavailable' (never a number) without weights."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import scipy.linalg

from talkinghead.metrics import fid
from talkinghead.metrics.fid import FidResult, compute_fid, feature_statistics, frechet_distance


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
