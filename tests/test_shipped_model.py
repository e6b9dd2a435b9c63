"""The shipped real-face model (src/talkinghead/weights/, docs/model-card.md): what it holds, who it never saw,
and `talkinghead animate` with no --checkpoint on the committed Mona Lisa. Needs no ../shared data: the weights,
the portrait and the split are committed, and the driver is rendered by our own synthetic renderer."""

from __future__ import annotations

import importlib.resources
import logging
from pathlib import Path

import numpy as np
import pytest

from talkinghead import cli
from talkinghead.checkpoint import load_checkpoint
from talkinghead.compose import SYNTHETIC_TAG
from talkinghead.data.split import IdentitySplit
from talkinghead.shipped import MAX_BYTES, SHIPPED_MODEL, main, make_shipped_model, shipped_model_path
from talkinghead.showcase import animate_portrait

pytestmark = pytest.mark.usefixtures("one_thread")

REPO_ROOT = Path(__file__).resolve().parents[1]
SPLIT = REPO_ROOT / "docs" / "splits" / "shared-dev-data.json"
DRIVER_FRAMES = 12


def _package_file(*parts: str) -> Path:
    return Path(str(importlib.resources.files("talkinghead").joinpath(*parts)))


def test_the_shipped_model_is_a_small_warp128_export_that_can_be_fine_tuned():
    path = shipped_model_path()
    assert path == _package_file("weights", SHIPPED_MODEL)
    assert 0 < path.stat().st_size <= MAX_BYTES
    checkpoint = load_checkpoint(path, expected_kind="export")
    assert checkpoint.config.preset == "warp-128" and checkpoint.config.model.generator == "warp"
    names = set(checkpoint.tensors)
    for prefix in ("embedder.", "generator.", "discriminator.blocks."):
        assert any(name.startswith(prefix) for name in names), prefix
    # Fine-tuning starts w′ at w0 + ê and scores with V and b (Eq. 5); W (one row per training clip) is not shipped.
    assert {"discriminator.w0", "discriminator.b"} <= names
    assert not any(name.startswith("discriminator.video_embeddings") for name in names)
    assert checkpoint.metadata["variant"] == "FT"


def test_refreshing_the_shipped_model_may_change_how_it_runs_but_not_what_it_is(tmp_path, capsys):
    """``--set model.inference_sources=3``: same tensors, the run setting changed and recorded; a shape or a
    training field is refused."""
    shipped = load_checkpoint(shipped_model_path())
    before = shipped.config.model.inference_sources
    parts = shipped.config.finetune.parts
    other = "all" if parts == "warp" else "warp"
    result = make_shipped_model(shipped_model_path(), tmp_path / "m.safetensors",
                                run_settings=[f"model.inference_sources={before + 1}", f"finetune.parts={other}"])
    made = load_checkpoint(result["path"], expected_kind="export")
    assert made.config.model.inference_sources == before + 1 and made.config.finetune.parts == other
    assert made.config.model.image_size == shipped.config.model.image_size
    assert made.metadata["run_settings_changed"] == {"inference_sources": {"from": before, "to": before + 1},
                                                     "finetune.parts": {"from": parts, "to": other}}
    assert set(made.tensors) == set(shipped.tensors)
    assert all(bool((made.tensors[name] == shipped.tensors[name]).all()) for name in shipped.tensors)
    for item in ("model.image_size=64", "train.steps=1"):
        with pytest.raises(SystemExit) as refused:
            main([str(shipped_model_path()), "-o", str(tmp_path / "x.safetensors"), "--set", item])
        assert refused.value.code == 2 and "run settings" in capsys.readouterr().err
        assert not (tmp_path / "x.safetensors").exists()


def test_run_settings_that_depend_on_each_other_may_come_in_any_order(tmp_path):
    """Switching the lids off needs lid_colour_match off too: both orders of the two ``--set`` give the same file
    (they are applied together, then checked, as `evaluate` and `animate` apply them)."""
    import dataclasses

    from talkinghead.checkpoint import save_checkpoint

    shipped = load_checkpoint(shipped_model_path())
    model = dataclasses.replace(shipped.config.model, prior_input=True, lid_prior=True, lid_colour_match=True)
    painted = save_checkpoint(tmp_path / "lids.safetensors", shipped.tensors,
                              dataclasses.replace(shipped.config, model=model), "export", shipped.metadata)
    for order in (["model.lid_prior=false", "model.lid_colour_match=false"],
                  ["model.lid_colour_match=false", "model.lid_prior=false"]):
        result = make_shipped_model(painted, tmp_path / f"{order[0]}.safetensors", run_settings=order)
        made = load_checkpoint(result["path"], expected_kind="export")
        assert not made.config.model.lid_prior and not made.config.model.lid_colour_match
        assert made.metadata["run_settings_changed"] == {"lid_prior": {"from": True, "to": False},
                                                         "lid_colour_match": {"from": True, "to": False}}
    with pytest.raises(Exception, match="lid_colour_match"):  # one without the other is still refused
        make_shipped_model(painted, tmp_path / "half.safetensors", run_settings=["model.lid_prior=false"])


def test_the_shipped_model_never_saw_a_held_out_person():
    """Its identity record (the people of every training clip) against the committed split's test part."""
    split = IdentitySplit.load(SPLIT)
    metadata = load_checkpoint(shipped_model_path()).metadata
    seen = metadata["dataset"]["identities"]
    assert len(seen) == len(set(seen)) >= 50  # a real record, not an empty list that passes by default
    assert len(split.held_out) == 13
    assert sorted(set(seen) & split.held_out) == []
    assert [name for name in seen if split.part_of(name) != "train"] == []  # no validation person either
    training = metadata["training_data"]
    assert training["split_sha256"] == split.sha256 and training["part"] == "train"  # today's split file
    assert training["people"] == len(seen)


def test_load_without_a_path_is_the_shipped_model_and_says_so_once(caplog):
    from talkinghead.inference import TalkingHead

    with caplog.at_level(logging.INFO, logger="talkinghead.shipped"):
        head = TalkingHead.load(landmarks=lambda image, previous: None)
    lines = [r.getMessage() for r in caplog.records if r.name == "talkinghead.shipped"]
    assert len(lines) == 1 and SHIPPED_MODEL in lines[0] and "136 people" in lines[0]
    assert head.config.preset == "warp-128" and head.discriminator is not None


@pytest.fixture(scope="module")
def synthetic_driver(tmp_path_factory) -> Path:
    """A synthetic person talking (our renderer, nothing research-licensed), framed by the crop policy, 25 fps."""
    from talkinghead.config import DataConfig
    from talkinghead.data.prepare import crop_clip
    from talkinghead.data.synthetic import SyntheticVideo
    from talkinghead.video import VideoWriter

    path = tmp_path_factory.mktemp("driver") / "talk.mp4"
    data = DataConfig()
    images, points, _ = SyntheticVideo(7, 3, DRIVER_FRAMES).render(256)
    cropped, _, _ = crop_clip(images, points, 256, 25.0, data.crop_scale, data.crop_lift)
    with VideoWriter(path, fps=25.0) as writer:
        for frame in cropped:
            writer.write(frame)
    return path


def test_animate_the_committed_mona_lisa_with_no_checkpoint(synthetic_driver, tmp_path, caplog, capsys):
    """The command a user types right after pip install, through the packaged model and the packaged portrait."""
    import av

    mona = _package_file("assets", "mona_lisa.jpg")
    output = tmp_path / "out.mp4"
    with caplog.at_level(logging.INFO, logger="talkinghead.shipped"):
        assert cli.main(["animate", "--source", str(mona), "--driver", str(synthetic_driver), "-o", str(output)]) == 0
    assert any(SHIPPED_MODEL in r.getMessage() for r in caplog.records if r.name == "talkinghead.shipped")
    assert f"{DRIVER_FRAMES} frames at 25.000 fps" in capsys.readouterr().out
    with av.open(str(output)) as container:
        stream = container.streams.video[0]
        assert float(stream.average_rate) == pytest.approx(25.0)
        tags = " ".join(f"{k}={v}" for k, v in container.metadata.items())
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert SYNTHETIC_TAG in tags and "synthetic=true" in tags
    assert len(frames) == DRIVER_FRAMES
    assert frames[0].shape == (640, 360, 3)  # the whole painting (the packaged one is 360 x 640), the default
    assert float(frames[-1].std()) > 10  # a picture, not a flat frame


def test_the_showcase_animates_the_whole_packaged_mona_lisa(tmp_path):
    """What `talkinghead demo` does first and the README's pictures are made from: the whole painting, talking."""
    from talkinghead.showcase import contact_sheet, failure_cases
    from talkinghead.video import VideoReader

    result = animate_portrait(tmp_path, frames=8)
    frames = list(VideoReader(result["output"]))
    assert result["frames"] == len(frames) == 8 and result["model"] == "warp-128"
    assert frames[0].shape == (640, 360, 3) and result["size"] == [360, 640]
    sheet = contact_sheet(result["output"], result["driver"], columns=4)
    assert sheet.shape == (360 + 640, 4 * 360, 3)
    # The bottom row is the pictures of frames 0, 2, 5, 7 (evenly spaced), the top row the driver at those times.
    assert np.array_equal(sheet[360:, :360], frames[0]) and np.array_equal(sheet[360:, 3 * 360:], frames[7])
    driver = list(VideoReader(result["driver"]))
    assert np.abs(sheet[:360, :360].mean() - driver[0].mean()) < 3
    strip, captions = failure_cases(result["output"], 8, result["driver"])
    assert strip.shape == (640, 3 * (640 + 360), 3) and captions[0].startswith("neutral")


def test_live_from_a_portrait_uses_the_shipped_model(synthetic_driver, tmp_path, caplog, capsys):
    """`talkinghead live --source portrait.jpg` needs no avatar file and no checkpoint (the video plays as the camera;
    live may drop frames when the model is slower than it, so only delivery is checked)."""
    from talkinghead.video import VideoReader

    output = tmp_path / "live.mp4"
    with caplog.at_level(logging.INFO, logger="talkinghead.shipped"):
        assert cli.main(["live", "--source", str(_package_file("assets", "mona_lisa.jpg")), "--driver",
                         str(synthetic_driver), "--out", str(output), "--no-window"]) == 0
    assert [r for r in caplog.records if r.name == "talkinghead.shipped" and SHIPPED_MODEL in r.getMessage()]
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("live: ")
    assert 0 < sum(1 for _ in VideoReader(output)) <= DRIVER_FRAMES
