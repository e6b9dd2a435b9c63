"""`talkinghead live`: a video file stands in for the camera. Frames are paced in real time, the newest frame wins
(a slow model drops frames instead of queueing them, so latency stays bounded), the file written has one frame per
source frame, and the command prints what happened."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from _app_helpers import driver_clip, tiny_avatar, write_driver
from talkinghead import cli
from talkinghead.live import Captured, LatestFrame, VideoFileSource, run_live
from talkinghead.video import VideoReader

pytestmark = pytest.mark.usefixtures("one_thread")


def _captured(index: int) -> Captured:
    return Captured(index, time.perf_counter(), np.zeros((4, 4, 3), np.uint8))


def test_the_slot_keeps_only_the_newest_frame_and_counts_the_rest_as_dropped():
    slot = LatestFrame()
    for index in range(3):
        slot.put(_captured(index))
    assert slot.take(timeout=0).index == 2
    assert (slot.produced, slot.dropped) == (3, 2)
    assert slot.take(timeout=0) is None  # emptied by the take: nothing waits in a queue
    slot.put(_captured(3))
    slot.close()
    assert slot.take().index == 3  # a closed slot still hands over its last frame...
    assert slot.take() is None  # ...then reports the end
    assert (slot.produced, slot.dropped) == (4, 2)


def test_a_video_file_is_released_at_its_frame_rate(tmp_path):
    path = write_driver(tmp_path / "d.mp4", frames=5, fps=10.0, size=64)
    now = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    source = VideoFileSource(path, clock=lambda: now[0], sleep=sleep)
    released = []
    for index, _ in enumerate(source.frames()):
        released.append(round(now[0] - 100.0, 6))
        if index == 1:
            now[0] += 0.25  # the consumer was busy for 2.5 frames: the source does not wait for it
    assert released == [0.0, 0.1, 0.35, 0.35, 0.4]  # frames 2 and 3 were due while it was busy: no sleep
    assert sleeps == pytest.approx([0.1, 0.05])


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    """20 frames at 20 fps: one second of a synthetic person talking."""
    return write_driver(tmp_path_factory.mktemp("live") / "driver.mp4", frames=20, fps=20.0)


def test_a_slow_model_drops_frames_and_the_latency_stays_bounded(driver, tmp_path):
    """Landmarks take 150 ms (3 frame periods): about 2 of every 3 frames must be dropped. Queued instead, the
    last frame would wait ~2 s; with the newest frame winning, no frame waits more than one frame's work."""
    _, points = driver_clip(20)

    def slow_landmarks(image, previous):
        time.sleep(0.15)
        return points[0].copy()

    rendered: list[int] = []
    output = tmp_path / "live.mp4"
    stats = run_live(tiny_avatar(landmarks=slow_landmarks), VideoFileSource(driver), output=output,
                     on_frame=lambda captured, image, latency: rendered.append(captured.index))
    assert stats.produced == 20
    assert stats.rendered + stats.dropped == 20
    assert stats.rendered == len(rendered) == len(stats.latencies_ms)
    assert 8 <= stats.dropped <= 16, stats.summary()
    assert rendered == sorted(rendered) and rendered[-1] == 19  # in order, and the source's last frame is shown
    assert min(stats.latencies_ms) >= 150.0
    assert max(stats.latencies_ms) < 600.0, stats.latencies_ms
    # One file frame per source frame (a dropped frame's slot repeats the frame on screen), at the source's fps.
    reader = VideoReader(output)
    assert sum(1 for _ in reader) == stats.written == 20
    assert reader.fps == pytest.approx(20.0)
    first = next(iter(reader))
    assert first.shape == (256, 512, 3)  # camera | avatar at the display height, the latency drawn on top


def test_a_model_faster_than_the_camera_drops_nothing(tmp_path):
    """~15 ms of work per frame against a 100 ms frame period: every frame is rendered."""
    driver = write_driver(tmp_path / "d.mp4", frames=10, fps=10.0, size=64)
    _, points = driver_clip(1)
    stats = run_live(tiny_avatar(landmarks=lambda image, previous: points[0].copy()), VideoFileSource(driver),
                     output=tmp_path / "live.mp4")
    assert (stats.produced, stats.rendered, stats.dropped) == (10, 10, 0), stats.summary()
    assert stats.seconds == pytest.approx(1.0, abs=0.5)  # real time, not as fast as decoding allows


def test_live_command_with_a_video_file_as_the_camera(driver, tmp_path, capsys):
    """dlib tracks the synthetic driver; the avatar file is loaded as `talkinghead finetune` writes it."""
    avatar_path = tmp_path / "tiny.avatar"
    tiny_avatar().save(avatar_path)
    output = tmp_path / "live.mp4"
    assert cli.main(["live", "--avatar", str(avatar_path), "--driver", str(driver), "--out", str(output),
                     "--no-window"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("live: 20 frames delivered") and "latency median" in line, line
    assert sum(1 for _ in VideoReader(output)) == 20


def test_live_without_a_display_or_an_output_is_a_clear_error(driver, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    avatar_path = tmp_path / "tiny.avatar"
    tiny_avatar().save(avatar_path)
    assert cli.main(["live", "--avatar", str(avatar_path), "--driver", str(driver)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("talkinghead live: error:") and "--out" in error and "display" in error, error
