"""The test-scaled demo: the whole pipeline end to end on synthetic heads, its outputs, and resuming."""

from __future__ import annotations

import json

import numpy as np
import pytest

from talkinghead.demo import DEMO_PRESETS, run_demo
from talkinghead.demo_report import quality_checks
from talkinghead.video import VideoReader


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    state = run_demo(out, minutes=2.0, scale="test", progress=False)
    return out, state


@pytest.mark.slow
def test_demo_writes_every_output(demo_run):
    """The whole pipeline (data, meta-learning, evaluation, animation, report) in about two minutes: slow by
    design, it is the one test that runs every stage for real."""
    out, state = demo_run
    assert set(state["done"]) == {"mona_lisa", "data", "train", "evaluate", "animate", "report"}
    report = (out / "report.md").read_text()
    # First, the product: the packaged Mona Lisa by the shipped real-face model, the whole painting talking.
    assert (out / "mona_lisa.mp4").stat().st_mtime < (out / "data" / "train" / "index.json").stat().st_mtime
    mona = list(VideoReader(out / "mona_lisa.mp4"))
    assert len(mona) == state["done"]["mona_lisa"]["frames"] == 24  # the test scale's animation_frames
    assert mona[0].shape == (640, 360, 3)  # the packaged 360 x 640 painting, as `animate` writes it
    assert state["done"]["mona_lisa"]["model"] == "warp-128"
    assert "the shipped real-face model on the Mona Lisa" in report and (out / "mona_lisa_sheet.png").exists()
    for section in ("The paper's orderings", "Self-reenactment", "Training curves", "Animation"):
        assert section in report
    table = (out / "evaluation" / "table.md").read_text()
    for method in ("copy-source (8)", "mesh-warp (8)", "ours-FT-init (8)", "ours-FT (8)", "ours-FT (1)"):
        assert method in table
    frames = list(VideoReader(out / "animation.mp4"))
    assert len(frames) == state["done"]["animate"]["frames"] > 0
    assert frames[0].shape[1] == 3 * frames[0].shape[0]  # driver | landmark image | result
    checks = json.loads((out / "quality.json").read_text())
    assert [c["name"] for c in checks] == [c["name"] for c in state["done"]["report"]["checks"]]
    assert all(c["passed"] is not None for c in checks)  # every ordering was measured
    assert 10 < state["done"]["train"]["steps"] <= state["train_steps"]


@pytest.mark.slow
def test_demo_resumes_without_redoing_work_and_refuses_other_settings(demo_run):
    out, state = demo_run
    before = (out / "run" / "export.safetensors").stat().st_mtime_ns
    mona_before = (out / "mona_lisa.mp4").stat().st_mtime_ns
    again = run_demo(out, minutes=2.0, scale="test", progress=False)
    assert (out / "run" / "export.safetensors").stat().st_mtime_ns == before
    assert (out / "mona_lisa.mp4").stat().st_mtime_ns == mona_before  # the Mona Lisa is not made again
    assert again["done"].keys() == state["done"].keys()
    with pytest.raises(ValueError, match="other settings"):
        run_demo(out, minutes=3.0, scale="test", progress=False)
    other = next(name for name in DEMO_PRESETS if name != state["settings"]["preset"])
    with pytest.raises(ValueError, match="other settings"):  # another family must not resume this run
        run_demo(out, minutes=2.0, scale="test", progress=False, preset=other)


def test_quality_checks_read_the_papers_orderings():
    def row(method, shots, ssim, l1):
        return {"method": method, "shots": shots, "metrics": {"ssim": {"mean": ssim}, "l1": {"mean": l1}}}

    report = {"rows": [row("copy-source", 8, 0.70, 0.05), row("ours-FT-init", 8, 0.72, 0.05),
                       row("ours-FT", 8, 0.80, 0.03), row("ours-FT", 1, 0.75, 0.04)]}
    assert [c["passed"] for c in quality_checks(report)] == [True, True, True, True]
    report["rows"][2] = row("ours-FT", 8, 0.60, 0.09)
    assert [c["passed"] for c in quality_checks(report)] == [False, False, False, False]
    report["rows"][2]["metrics"]["ssim"]["mean"] = float(np.nan)
    assert quality_checks(report)[0]["passed"] is None


def test_each_demo_preset_builds_its_own_family_with_the_demo_overrides():
    from talkinghead.demo import demo_config

    for name, demo in DEMO_PRESETS.items():
        config = demo_config(50, None, name)
        assert config.preset == demo.preset == name
        assert config.train.steps == 50 and config.loss.pixel_weight == 10.0
        assert config.model.generator == ("warp" if name.startswith("warp") else "paper")
    assert not DEMO_PRESETS["warp-tiny"].warm_start  # it starts at the mesh warp, not from a packaged file
    with pytest.raises(ValueError, match="preset must be one of"):
        run_demo("unused", scale="test", preset="paper-256")


@pytest.mark.slow
def test_the_paper_preset_meta_learns_from_its_packaged_warm_start(demo_run, tmp_path):
    """The non-default preset's own part of the demo (tiny-64 from the packaged warm start), two steps on the
    fixture's training people (a few seconds): a second whole test-scaled demo would double this file's time."""
    from talkinghead.demo import demo_config
    from talkinghead.training.run import train_on_dataset
    from talkinghead.training.warm_start import packaged_demo_warm_start

    out, _ = demo_run
    warm = str(packaged_demo_warm_start())
    learner = train_on_dataset(demo_config(2, warm, "tiny-64"), out / "data" / "train", tmp_path / "run",
                               resume="auto", progress=False)
    assert learner.step == 2 and learner.bad_steps == 0
    assert learner.config.preset == "tiny-64" and learner.config.model.generator == "paper"
    assert (tmp_path / "run" / "export.safetensors").exists()
