"""Personalization and animation with real pictures and clips from ../shared/data (skipped when absent).

Driver landmarks go through the landmarks room's `FaceTracker`; the identity warning uses dlib's face
descriptor on real photos; the end-to-end test trains a tiny model for 2 steps and runs the real
`talkinghead finetune` and `talkinghead animate` commands on the Mona Lisa with a real talking clip.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from talkinghead import cli, inference
from talkinghead.compose import SYNTHETIC_TAG
from talkinghead.inference import Source, warn_if_different_people
from talkinghead.landmarks import default_landmarks, driver_tracker

DRIVER_WITH_AUDIO = "videos/lia__vox_man_grey_shirt.mp4"  # 256x256, 25 fps, AAC audio
TRACKED_CLIP = "videos/fom__vox_man_beard.mp4"  # 256x256, 35 fps, head turns


pytestmark = pytest.mark.usefixtures("one_thread")


def _frames(path: Path, count: int) -> list[np.ndarray]:
    from talkinghead.video import VideoReader

    return list(itertools.islice(iter(VideoReader(path)), count))


def _cut(source: Path, output: Path, frames: int) -> None:
    """The first ``frames`` frames of ``source`` (with its audio, cut at the video's end) into ``output``."""
    from talkinghead.video import VideoReader, VideoWriter

    reader = VideoReader(source)
    with VideoWriter(output, fps=reader.fps, audio_from=source if reader.has_audio else None) as writer:
        for frame in itertools.islice(iter(reader), frames):
            writer.write(frame)


def test_driver_landmarks_are_tracked_close_to_per_frame_detection(shared_data):
    """The default driver landmarks detect on few frames (FaceTracker) and agree with detecting on every
    frame to about a pixel on a 256x256 talking clip with head turns."""
    frames = _frames(shared_data / TRACKED_CLIP, 30)
    landmarks = default_landmarks()
    calls = {"detect": 0}
    detect = landmarks.detector.detect_faces

    def counting(image):
        calls["detect"] += 1
        return detect(image)

    landmarks.detector.detect_faces = counting
    track = driver_tracker(landmarks, "clip")
    tracked = [track(frame) for frame in frames]
    full_frame_detections = calls["detect"]
    landmarks.detector.detect_faces = detect
    detected, previous = [], None
    for frame in frames:
        previous = landmarks(frame, previous)
        detected.append(previous)
    assert all(p is not None and p.shape == (68, 2) and p.dtype == np.float32 for p in tracked)
    # Local looks (every verify_every frames) also call detect_faces, on a small window; full-frame ones are
    # the first frame only here (30 frames < detect_every = 25 + tracking never lost would give 2).
    assert full_frame_detections < len(frames) / 2
    errors = [float(np.abs(a - b).mean()) for a, b in zip(tracked, detected, strict=True)]
    assert np.mean(errors) < 1.5 and max(errors) < 4.0


def test_driver_tracker_wraps_a_plain_landmark_function():
    """An injected `LandmarkFn` (no tracker of its own) is called per frame with the previous good points."""
    seen = []

    def fake(image, previous):
        seen.append(None if previous is None else float(previous[0, 0]))
        value = float(image[0, 0, 0])
        return None if value == 0 else np.full((68, 2), value, np.float32)

    track = driver_tracker(fake)
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (5, 0, 7)]
    results = [track(f) for f in frames]
    assert results[1] is None and results[2][0, 0] == 7
    assert seen == [None, 5.0, 5.0]  # a frame without a face does not reset the previous landmarks


def _source(path: Path) -> Source:
    from talkinghead.video import read_image

    image = read_image(path)
    return Source(str(path), image, image[:4, :4], np.zeros((68, 2), np.float32), (0.0, 0.0, 4.0))


def test_identity_warning_on_real_portraits(shared_data, caplog):
    """Two photos of the same man: no warning; the man and Marilyn Monroe: a warning naming her picture."""
    portraits = shared_data / "portraits"
    man_1, man_2 = _source(portraits / "bilayer_man_1__source.jpg"), _source(portraits / "bilayer_man_2__target.jpg")
    monroe = _source(portraits / "monroe__lia.png")
    with caplog.at_level(logging.WARNING, logger="talkinghead.inference"):
        same = warn_if_different_people([man_1, man_2])
    assert len(same) == 1 and same[0] < inference.IDENTITY_THRESHOLD
    assert not [r for r in caplog.records if "different person" in r.getMessage()]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="talkinghead.inference"):
        different = warn_if_different_people([man_1, monroe])
    assert different[0] > inference.IDENTITY_THRESHOLD
    warnings = [r.getMessage() for r in caplog.records if "different person" in r.getMessage()]
    assert len(warnings) == 1 and "monroe__lia.png" in warnings[0]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, shared_data) -> Path:
    """A tiny-64 run trained for 2 steps on 3 synthetic people (its export is what the commands load)."""
    from talkinghead.config import apply_overrides, preset
    from talkinghead.data.prepare import write_synthetic_dataset
    from talkinghead.training.run import train_on_dataset

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("e2e")
    write_synthetic_dataset(root / "data", num_identities=3, videos_per_identity=1, frames_per_video=4, size=64)
    config = apply_overrides(preset("tiny-64"), ["loss.feature_network=mobilenet-offline", "train.steps=2",
                                                 "train.batch_size=2", "data.frames_per_episode=2"])
    train_on_dataset(config, root / "data", root / "run", device="cpu", progress=False)
    torch.set_num_threads(threads)
    assert (root / "run" / "export.safetensors").is_file()
    return root / "run"


def _check_output(path: Path, driver: Path, panels: int, size: int = 64) -> None:
    import av

    from talkinghead.video import VideoReader

    source = VideoReader(driver)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert float(stream.average_rate) == pytest.approx(source.fps, abs=0.01)
        assert len(container.streams.audio) == (1 if source.has_audio else 0)
        tags = " ".join(f"{k}={v}" for k, v in container.metadata.items())
        assert SYNTHETIC_TAG in tags and "synthetic=true" in tags
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == len(source) == 10
    assert frames[0].shape == (size, panels * size, 3)  # driver | landmark image | result, each size px high


@pytest.mark.slow
def test_mona_lisa_end_to_end_through_the_commands(trained_run, shared_data, tmp_path, capsys):
    """Slow (~6 s with its fixture on 2 shared cores, more while they are busy): 2 training steps (mobilenet
    content loss), 2 fine-tuning steps and two 10-frame animations of real media through `talkinghead finetune`
    and `talkinghead animate`, the path a user takes; nothing smaller covers those pieces together."""
    mona = shared_data / "portraits" / "mona_lisa__lia_facecrop.png"
    driver = tmp_path / "driver.mp4"
    _cut(shared_data / DRIVER_WITH_AUDIO, driver, 10)
    avatar = tmp_path / "person.avatar"
    assert cli.main(["finetune", "--checkpoint", str(trained_run), "--source", str(mona), "-o", str(avatar),
                     "--steps", "2"]) == 0
    assert avatar.is_file() and "fine-tuned, T = 1, 2 steps" in capsys.readouterr().out
    output = tmp_path / "out.mp4"
    assert cli.main(["animate", "--avatar", str(avatar), "--driver", str(driver), "-o", str(output),
                     "--side-by-side"]) == 0
    assert "10 frames at 25.000 fps" in capsys.readouterr().out
    _check_output(output, driver, panels=3, size=256)  # driver | landmarks | the whole 256 px picture (default)
    direct = tmp_path / "direct.mp4"
    assert cli.main(["animate", "--checkpoint", str(trained_run), "--source", str(mona), "--driver", str(driver),
                     "-o", str(direct)]) == 0
    _check_output(direct, driver, panels=1, size=256)
