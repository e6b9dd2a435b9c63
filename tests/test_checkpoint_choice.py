"""The checkpoint choice (`evaluate.checkpoint_choice`): validation people only, like with like, the whole frame must
not fall behind, the mouth decides."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from talkinghead.evaluate.checkpoint_choice import ChoiceError, Report, choose, main, table

VIDEOS = [f"v{i}.mp4" for i in range(8)]


def _write(folder: Path, split: str, values: dict[str, np.ndarray], part: str | None = "validation",
           videos: list[str] = VIDEOS, shots: int = 8, fd_mouth: float = 60.0) -> Path:
    """A report folder as `talkinghead evaluate` writes it: per-video metrics of the model row and one baseline
    (the mesh warp, 0.5 on every metric), and the rows' means; the mouth-open split's rows also carry the set
    metric mouth FD (the model's ``fd_mouth``, the mesh warp's 100)."""
    folder.mkdir(parents=True)
    settings = {"dataset_hash": "abc", "videos": videos, "shots": [shots], "targets": 16, "seed": 0,
                "finetune_steps": 0, "finetune_epochs": None, "temporal_window": 48, "cross_identity": False,
                "identity_split": None if part is None else {"sha256": "x", "part": part}}
    if split != "random":
        settings["split"] = split
    records = []
    for i, video in enumerate(videos):
        records.append({"video": video, "shots": shots, "protocol": "self", "method": "ours-FT-init",
                        "metrics": {name: float(v[i]) for name, v in values.items()}})
        records.append({"video": video, "shots": shots, "protocol": "self", "method": "mesh-warp",
                        "metrics": {name: 0.5 for name in values}})
    rows = []
    for method, means in (("ours-FT-init", {n: float(np.mean(v)) for n, v in values.items()}),
                          ("mesh-warp", {n: 0.5 for n in values})):
        if split == "mouth-open":
            means["fd_mouth"] = fd_mouth if method == "ours-FT-init" else 100.0
        rows.append({"method": method, "shots": shots, "metrics": {n: {"mean": m} for n, m in means.items()}})
    (folder / "settings.json").write_text(json.dumps(settings))
    (folder / "report.json").write_text(json.dumps({"per_video": records, "rows": rows}))
    return folder


def _whole(ssim_shift: float = 0.0, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ssim = 0.8 + 0.05 * rng.standard_normal(len(VIDEOS))
    l1 = 0.03 + 0.01 * rng.random(len(VIDEOS))
    psnr = 25 + rng.standard_normal(len(VIDEOS))
    return {"ssim": ssim + ssim_shift, "l1": l1 - ssim_shift / 10, "psnr": psnr + ssim_shift * 10}


def _mouth(l1_shift: float = 0.0, sharpness: float = 0.8, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(VIDEOS)
    return {"mouth_l1": 0.05 + 0.01 * rng.random(n) + l1_shift, "mouth_ssim": 0.6 + 0.05 * rng.random(n),
            "mouth_sharpness": np.full(n, sharpness) + 0.01 * rng.standard_normal(n),
            "teeth_shown": rng.random(n), "teeth_invented": rng.random(n)}


def _candidate(tmp_path: Path, name: str, whole: dict, mouth: dict, fd_mouth: float = 60.0
               ) -> tuple[str, list[Report]]:
    return name, [Report.load(_write(tmp_path / f"{name}-random", "random", whole)),
                  Report.load(_write(tmp_path / f"{name}-mouth", "mouth-open", mouth, fd_mouth=fd_mouth))]


def test_a_candidate_ahead_on_the_mouth_and_not_behind_on_the_whole_frame_is_chosen(tmp_path: Path) -> None:
    reference = _candidate(tmp_path, "shipped", _whole(), _mouth())
    better = _candidate(tmp_path, "better", _whole(0.0001), _mouth(l1_shift=-0.004))  # mouth L1 lower everywhere
    same = _candidate(tmp_path, "same", _whole(), _mouth())
    result = choose(reference, [same, better], "ours-FT-init")
    assert result["choice"] == "better"
    assert result["candidates"]["better"]["mouth"]["8"]["mouth_l1"]["verdict"] == "ahead"
    # SSIM, PSNR and L1 ahead on the random split, mouth L1 ahead on the mouth-open split
    assert result["candidates"]["better"]["score"] == 4 and result["candidates"]["better"]["eligible"]
    assert result["candidates"]["same"]["score"] == 0  # identical values: every difference 0, a tie


def test_a_better_mouth_does_not_buy_a_worse_whole_frame(tmp_path: Path) -> None:
    """Stop 29's continued run: a mouth gain with whole-frame SSIM behind on every video is not eligible."""
    reference = _candidate(tmp_path, "shipped", _whole(), _mouth())
    candidate = _candidate(tmp_path, "sharper", _whole(-0.001), _mouth(l1_shift=-0.004))
    result = choose(reference, [candidate], "ours-FT-init")
    entry = result["candidates"]["sharper"]
    assert entry["whole_frame"]["8"]["ssim"]["verdict"] == "behind" and entry["whole_frame"]["8"]["ssim"]["behind"] == 8
    assert entry["whole_frame"]["8"]["l1"]["verdict"] == "behind"  # L1 higher is behind
    assert not entry["eligible"] and entry["score"] == 1 - 3
    assert result["choice"] == "shipped"


def test_a_steadier_sharper_whole_frame_scores_without_the_mouth(tmp_path: Path) -> None:
    """Pop rate and sharpness count on the random split; they do not decide eligibility."""
    whole = _whole()
    steadier = {**whole, "pop_rate": np.full(len(VIDEOS), 0.02), "sharpness": np.full(len(VIDEOS), 0.6)}
    shakier = {**whole, "pop_rate": np.full(len(VIDEOS), 0.05), "sharpness": np.full(len(VIDEOS), 0.5)}
    reference = _candidate(tmp_path, "shipped", shakier, _mouth())
    result = choose(reference, [_candidate(tmp_path, "steady", steadier, _mouth())], "ours-FT-init")
    verdicts = result["candidates"]["steady"]["whole_frame"]["8"]
    assert verdicts["pop_rate"]["verdict"] == "ahead" and verdicts["sharpness"]["verdict"] == "ahead"
    assert result["candidates"]["steady"]["score"] == 2 and result["choice"] == "steady"
    reversed_roles = choose(_candidate(tmp_path, "new-ref", steadier, _mouth()),
                            [_candidate(tmp_path, "shaky", shakier, _mouth())], "ours-FT-init")
    # the steady reference meets the pop-rate target (<= 0.02), the shaky candidate gives it up: not eligible
    shaky = reversed_roles["candidates"]["shaky"]
    assert shaky["score"] == -2 and not shaky["eligible"]
    assert shaky["targets_lost"] == ["pop_rate@random/T=8"]
    assert reversed_roles["choice"] == "new-ref"


def test_a_metric_with_a_target_is_compared_by_its_distance_to_it(tmp_path: Path) -> None:
    """Mouth sharpness → 1: 1.2 is farther from 1 than 0.9, so moving from 0.9 to 1.2 is behind, not ahead."""
    reference = _candidate(tmp_path, "shipped", _whole(), _mouth(sharpness=0.9))
    oversharp = _candidate(tmp_path, "oversharp", _whole(), _mouth(sharpness=1.2))
    closer = _candidate(tmp_path, "closer", _whole(), _mouth(sharpness=0.97))
    result = choose(reference, [oversharp, closer], "ours-FT-init")
    assert result["candidates"]["oversharp"]["mouth"]["8"]["mouth_sharpness"]["verdict"] == "behind"
    assert result["candidates"]["closer"]["mouth"]["8"]["mouth_sharpness"]["verdict"] == "ahead"
    assert result["choice"] == "closer"


@pytest.mark.parametrize("part", ["test", None])
def test_reports_of_the_test_people_or_without_a_split_are_refused(tmp_path: Path, part: str | None) -> None:
    folder = _write(tmp_path / "r", "random", _whole(), part=part)
    with pytest.raises(ChoiceError, match="validation people only"):
        Report.load(folder)


def test_reports_that_measured_different_things_are_refused_by_field(tmp_path: Path) -> None:
    reference = _candidate(tmp_path, "shipped", _whole(), _mouth())
    other_videos = ("other", [Report.load(_write(tmp_path / "o-random", "random", _whole(), videos=VIDEOS[::-1])),
                              Report.load(_write(tmp_path / "o-mouth", "mouth-open", _mouth()))])
    with pytest.raises(ChoiceError, match="'videos'"):
        choose(reference, [other_videos], "ours-FT-init")
    no_mouth = ("half", [Report.load(_write(tmp_path / "h-random", "random", _whole()))])
    with pytest.raises(ChoiceError, match="mouth-open"):
        choose(reference, [no_mouth], "ours-FT-init")


def test_the_command_prints_the_table_and_writes_the_choice(tmp_path: Path, capsys) -> None:
    ref = [_write(tmp_path / "a-random", "random", _whole()), _write(tmp_path / "a-mouth", "mouth-open", _mouth())]
    cand = [_write(tmp_path / "b-random", "random", _whole(0.0001)),
            _write(tmp_path / "b-mouth", "mouth-open", _mouth(l1_shift=-0.004))]
    out = tmp_path / "choice.json"
    main(["--reference", "a", *map(str, ref), "--candidate", "b", *map(str, cand), "--out", str(out)])
    assert "Choice: **b**" in capsys.readouterr().out
    assert json.loads(out.read_text())["choice"] == "b"
    test_part = _write(tmp_path / "t-random", "random", _whole(), part="test")
    with pytest.raises(SystemExit) as exit_info:
        main(["--reference", "a", *map(str, ref), "--candidate", "t", str(test_part)])
    assert exit_info.value.code == 2


def test_a_better_score_does_not_buy_a_worse_mouth_fd(tmp_path: Path) -> None:
    """Stop 31's run H: ahead on the score, its mouth FD 13 % above the reference's. FD is a set metric, so it is a
    guard (at most 5 % above the reference's on each T), not a score term."""
    reference = _candidate(tmp_path, "shipped", _whole(), _mouth(), fd_mouth=60.0)
    worse_fd = _candidate(tmp_path, "worse-fd", _whole(0.0001), _mouth(l1_shift=-0.004), fd_mouth=68.0)
    near_fd = _candidate(tmp_path, "near-fd", _whole(0.0001), _mouth(l1_shift=-0.004), fd_mouth=62.5)
    result = choose(reference, [worse_fd, near_fd], "ours-FT-init")
    refused = result["candidates"]["worse-fd"]
    assert refused["score"] == 4 and not refused["eligible"]
    assert refused["mouth_fd"]["8"]["change"] == pytest.approx(68 / 60 - 1)
    assert refused["refusals"] == ["mouth FD +13.3 % at T = 8"]
    assert result["candidates"]["near-fd"]["eligible"] and result["choice"] == "near-fd"


def test_a_target_the_reference_meets_is_never_given_up(tmp_path: Path) -> None:
    """Teeth invented <= 0.2 met by the reference; a candidate ahead elsewhere that invents teeth in 0.3 of the
    mouths is refused, and a reference that misses a target does not hold a candidate to it."""
    n = len(VIDEOS)
    few = {**_mouth(), "teeth_invented": np.full(n, 0.1)}
    many = {**_mouth(l1_shift=-0.004), "teeth_invented": np.full(n, 0.3)}
    result = choose(_candidate(tmp_path, "shipped", _whole(), few), [_candidate(tmp_path, "inventive", _whole(0.0001),
                                                                                many)], "ours-FT-init")
    entry = result["candidates"]["inventive"]
    assert entry["targets"]["teeth_invented@mouth-open/T=8"] is False
    assert entry["targets_lost"] == ["teeth_invented@mouth-open/T=8"] and not entry["eligible"]
    assert result["choice"] == "shipped"
    both_miss = choose(_candidate(tmp_path, "ref2", _whole(), {**_mouth(), "teeth_invented": np.full(n, 0.4)}),
                       [_candidate(tmp_path, "cand2", _whole(0.0001), many)], "ours-FT-init")
    assert both_miss["candidates"]["cand2"]["targets_lost"] == [] and both_miss["choice"] == "cand2"


def _eyes(l1_shift: float = 0.0, seed: int = 2, flecks: np.ndarray | float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(VIDEOS)
    return {"eye_l1": 0.07 + 0.01 * rng.random(n) + l1_shift, "eye_ssim": 0.6 + 0.05 * rng.random(n),
            "eye_sharpness": np.full(n, 0.9) + 0.01 * rng.standard_normal(n),
            "eye_flecks": 0.0001 * rng.random(n) + flecks}


def test_the_eyes_count_when_the_reference_reads_them_and_every_candidate_must_then_read_them(tmp_path: Path) -> None:
    """Stop 34: with an eyes-closed report beside the reference's, the eye region's metrics enter the score; a
    candidate without that report is refused by name."""
    reference = _candidate(tmp_path, "shipped", _whole(), _mouth())
    reference[1].append(Report.load(_write(tmp_path / "shipped-eyes", "eyes-closed", _eyes())))
    lids = _candidate(tmp_path, "lids", _whole(), _mouth())
    lids[1].append(Report.load(_write(tmp_path / "lids-eyes", "eyes-closed", _eyes(l1_shift=-0.003))))
    result = choose(reference, [lids], "ours-FT-init")
    entry = result["candidates"]["lids"]
    assert entry["eyes"]["8"]["eye_l1"]["verdict"] == "ahead" and entry["eyes"]["8"]["eye_ssim"]["verdict"] == "tie"
    assert entry["score"] == 1 and entry["eligible"] and result["choice"] == "lids"
    blind = _candidate(tmp_path, "blind", _whole(), _mouth())
    with pytest.raises(ChoiceError, match="eyes-closed"):
        choose(reference, [blind], "ours-FT-init")
    without = choose(_candidate(tmp_path, "plain", _whole(), _mouth()), [lids], "ours-FT-init")
    assert without["candidates"]["lids"]["eyes"] == {} and without["candidates"]["lids"]["score"] == 0


def test_white_flecks_in_the_eyes_refuse_a_candidate_past_their_tolerance(tmp_path: Path) -> None:
    """Stop 35: a candidate whose eyes are better on L1 but carry white flecks on a few people is not eligible, however
    little the flecks move a paired interval; flecks within `FLECKS_TOLERANCE` are allowed."""
    from talkinghead.evaluate.checkpoint_choice import FLECKS_TOLERANCE

    reference = _candidate(tmp_path, "shipped", _whole(), _mouth())
    reference[1].append(Report.load(_write(tmp_path / "shipped-eyes", "eyes-closed", _eyes())))
    few = np.zeros(len(VIDEOS))
    few[:3] = 6 * FLECKS_TOLERANCE  # three people with flecks: the mean moves by more than the tolerance
    flecked = _candidate(tmp_path, "flecked", _whole(), _mouth())
    flecked[1].append(Report.load(_write(tmp_path / "flecked-eyes", "eyes-closed", _eyes(-0.003, flecks=few))))
    faint = _candidate(tmp_path, "faint", _whole(), _mouth())
    faint[1].append(Report.load(_write(tmp_path / "faint-eyes", "eyes-closed",
                                       _eyes(-0.003, flecks=few / 20))))
    result = choose(reference, [flecked, faint], "ours-FT-init")
    bad, good = result["candidates"]["flecked"], result["candidates"]["faint"]
    assert bad["eye_flecks"]["8"]["change"] == pytest.approx(few.mean(), abs=1e-4)
    assert not bad["eligible"] and any("eye white flecks" in r for r in bad["refusals"])
    assert good["eligible"] and result["choice"] == "faint"
    assert "eye white flecks (mean)" in table(result)
    old = _candidate(tmp_path, "old", _whole(), _mouth())  # an eyes-closed report from before the measure
    old_eyes = _eyes()
    del old_eyes["eye_flecks"]
    old[1].append(Report.load(_write(tmp_path / "old-eyes", "eyes-closed", old_eyes)))
    unmeasured = choose(old, [faint], "ours-FT-init")["candidates"]["faint"]
    assert not unmeasured["eligible"] and any("flecks not measured" in r for r in unmeasured["refusals"])


def test_mouth_fd_change_gets_a_paired_interval_from_cached_features_and_it_counts_in_the_score(tmp_path: Path) -> None:
    """When both mouth-open folders cached the crops' features for the same targets (cache/fd_mouth/<video>.npz, as
    `evaluate` writes them), the FD change gets its paired jackknife interval over videos; the table prints it, and
    since stop 37 an interval wholly below 0 counts +1 in the score (without the features: a tie)."""
    reference = _candidate(tmp_path, "shipped", _whole(), _mouth(), fd_mouth=60.0)
    closer = _candidate(tmp_path, "closer", _whole(), _mouth(), fd_mouth=50.0)
    without = choose(reference, [closer], "ours-FT-init")["candidates"]["closer"]
    assert without["mouth_fd"]["8"]["low"] is None
    rng = np.random.default_rng(0)
    for i, video in enumerate(VIDEOS):
        real = rng.normal(size=(10, 12)) + i
        for name, noise in (("shipped", 1.0), ("closer", 0.4)):
            cache = tmp_path / f"{name}-mouth" / "cache" / "fd_mouth"
            cache.mkdir(parents=True, exist_ok=True)
            output = real + noise * rng.normal(size=real.shape)
            np.savez(cache / f"{video}.npz", real=real, **{"ours-FT-init__T8": output})
    result = choose(reference, [closer], "ours-FT-init")
    entry = result["candidates"]["closer"]
    assert entry["mouth_fd"]["8"]["low"] < entry["mouth_fd"]["8"]["high"] < 0
    assert without["mouth_fd"]["8"]["verdict"] == "tie" and entry["mouth_fd"]["8"]["verdict"] == "ahead"
    assert entry["score"] == without["score"] + 1
    assert "mouth FD (set) | -16.7 % [" in table(result) and "| ahead: 50.0 against 60.0 |" in table(result)
    swapped = choose(closer, [(  # the other way round: the interval wholly above 0, -1
        "shipped", reference[1])], "ours-FT-init")["candidates"]["shipped"]
    assert swapped["mouth_fd"]["8"]["verdict"] == "behind" and swapped["score"] == without["score"] - 1
