"""Issue 25's targets read from a report's rows (`evaluate.targets`): each against the baselines of the same report."""

from __future__ import annotations

import pytest

from talkinghead.evaluate.targets import TARGETS, row_means, targets_met


def _report(shots: int, rows: dict[str, dict[str, float]]) -> dict:
    return {"rows": [{"method": m, "shots": shots, "metrics": {n: {"mean": v} for n, v in values.items()}}
                     for m, values in rows.items()]}


def _random(ours: dict[str, float]) -> dict:
    return _report(8, {"ours": ours, "mesh-warp": {"ssim": 0.80, "l1": 0.030},
                       "mesh-warp+blur": {"ssim": 0.805, "l1": 0.029}, "fixed-blend": {"ssim": 0.802, "l1": 0.0295}})


def _mouth(ours: dict[str, float]) -> dict:
    return _report(8, {"ours": ours, "mesh-warp": {"fd_mouth": 100.0, "mouth_sharpness": 0.7, "mouth_l1": 0.05}})


def test_whole_frame_targets_compare_with_the_baselines_of_the_same_report() -> None:
    met = targets_met({"random": _random({"ssim": 0.811, "l1": 0.028, "pop_rate": 0.01})}, "ours")
    assert met["ssim_over_mesh@random/T=8"] is True
    assert met["ahead_of_blur_and_blend@random/T=8"] is True
    assert met["pop_rate@random/T=8"] is True
    assert met["pop_rate@random/T=1"] is None  # no T = 1 rows: not measured, neither met nor missed
    short = targets_met({"random": _random({"ssim": 0.809, "l1": 0.0291, "pop_rate": 0.03})}, "ours")
    assert short["ssim_over_mesh@random/T=8"] is False  # 0.009 above the mesh warp, not 0.01
    assert short["ahead_of_blur_and_blend@random/T=8"] is False  # L1 0.0291 is not below the blur's 0.029
    assert short["pop_rate@random/T=8"] is False


@pytest.mark.parametrize(("fd", "expected"), [(79.0, True), (80.0, True), (81.0, False)])
def test_mouth_fd_must_be_a_fifth_below_the_mesh_warp(fd: float, expected: bool) -> None:
    met = targets_met({"mouth-open": _mouth({"fd_mouth": fd})}, "ours")
    assert met["mouth_fd@mouth-open/T=8"] is expected
    assert met["teeth_shown@mouth-open/T=8"] is None  # a metric the row lacks is not measured


def test_mouth_targets_read_teeth_sharpness_and_l1() -> None:
    good = {"fd_mouth": 70.0, "mouth_sharpness": 0.71, "mouth_l1": 0.049, "teeth_shown": 0.5, "teeth_invented": 0.2}
    bad = {"fd_mouth": 70.0, "mouth_sharpness": 0.69, "mouth_l1": 0.051, "teeth_shown": 0.49, "teeth_invented": 0.21}
    ok, not_ok = (targets_met({"mouth-open": _mouth(v)}, "ours") for v in (good, bad))
    for name in ("teeth_shown", "teeth_invented", "mouth_sharpness", "mouth_l1"):
        assert ok[f"{name}@mouth-open/T=8"] is True and not_ok[f"{name}@mouth-open/T=8"] is False


def test_every_target_has_one_key_and_rows_skip_other_protocols() -> None:
    keys = [f"{t.name}@{t.split}/T={t.shots}" for t in TARGETS]
    assert len(keys) == len(set(keys)) == 14
    report = _report(8, {"ours": {"ssim": 0.9}})
    report["rows"].append({"method": "ours", "shots": 8, "protocol": "cross", "metrics": {"ssim": {"mean": 0.1}}})
    assert row_means(report, 8)["ours"]["ssim"] == 0.9
