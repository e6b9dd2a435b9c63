"""`talkinghead live`: a video file stands in for the camera. Frames are paced in real time, the newest frame wins
(a slow model drops frames instead of queueing them, so latency stays bounded), the file written has one frame per
source frame, and the command prints what happened."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from _app_helpers import driver_clip, tiny_avatar, write_driver
from talkinghead import cli, live
from talkinghead.live import Captured, FileSink, LatencyHistogram, LatestFrame, LiveStats, VideoFileSource, run_live
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
    assert stats.rendered == len(rendered) == stats.latency.count
    assert 8 <= stats.dropped <= 16, stats.summary()
    assert rendered == sorted(rendered) and rendered[-1] == 19  # in order, and the source's last frame is shown
    assert stats.latency.min_ms >= 150.0
    assert stats.latency.max_ms < 600.0, stats.summary()
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


# --- issue 26: bounded bookkeeping, capture-to-display latency, encoding off the render thread, warm-up, hangs ----


def test_latency_storage_stays_bounded_and_its_quantiles_exact_to_half_a_percent():
    """A live run can last hours: a million latencies take the memory of one, and the median and p95 are within
    half a bin (0.5 %) of numpy's over the same values."""
    histogram = LatencyHistogram()
    before = histogram.counts.nbytes
    values = np.random.default_rng(0).uniform(10.0, 90.0, 1_000_000)
    for value in values:
        histogram.add(value)
    assert histogram.counts.nbytes == before < 20_000
    assert histogram.count == len(values)
    assert (histogram.min_ms, histogram.max_ms) == (values.min(), values.max())
    for q in (0.5, 0.95):
        assert histogram.quantile(q) == pytest.approx(np.quantile(values, q), rel=0.006)
    assert np.isnan(LatencyHistogram().quantile(0.5))
    # Runs pooled (the benchmark's clips): the same figures as one histogram of all their latencies.
    first, second = LatencyHistogram(), LatencyHistogram()
    for value in values[:1000]:
        first.add(value)
    for value in values[1000:3000] * 2:
        second.add(value)
    pooled = np.concatenate([values[:1000], values[1000:3000] * 2])
    first.merge(second)
    assert (first.count, first.max_ms) == (3000, pooled.max())
    assert first.quantile(0.5) == pytest.approx(np.quantile(pooled, 0.5), rel=0.006)


def test_live_stats_hold_no_per_frame_list(driver, tmp_path):
    """What `LiveStats` keeps has the same size after 20 frames as before the first: nothing grows per frame."""
    _, points = driver_clip(1)

    def size(value: object) -> int:
        """Bytes held by ``value`` and, one level down, by its attributes (arrays by their data)."""
        if isinstance(value, np.ndarray):
            return value.nbytes
        return sys.getsizeof(value) + sum(size(v) for v in getattr(value, "__dict__", {}).values())

    def sizes(stats: LiveStats) -> dict[str, int]:
        return {name: size(value) for name, value in vars(stats).items()}

    empty = sizes(LiveStats())
    stats = run_live(tiny_avatar(landmarks=lambda image, previous: points[0].copy()), VideoFileSource(driver),
                     output=tmp_path / "live.mp4")
    assert stats.latency.count == stats.rendered > 10
    grown = {name: size for name, size in sizes(stats).items() if size > empty[name] + 64}
    assert not grown, grown


def test_the_file_sink_encodes_in_a_thread_of_its_own(tmp_path):
    """`write` hands the frame over and returns: with an encoder that takes 100 ms a frame, four writes take far
    less than one encode, every encode runs outside the caller's thread, and a dropped slot repeats the frame."""
    sink = FileSink(tmp_path / "sink.mp4", fps=10.0)
    encoded: list[tuple[str, int]] = []
    encode = sink.writer.write

    def slow_encode(image: np.ndarray) -> None:
        time.sleep(0.1)
        encoded.append((threading.current_thread().name, int(image[0, 0, 0])))
        encode(image)

    sink.writer.write = slow_encode
    frames = {index: np.full((64, 64, 3), 10 * index, np.uint8) for index in (0, 2, 3)}
    started = time.perf_counter()
    for index, image in frames.items():
        sink.write(index, image)
    handed_over = time.perf_counter() - started
    sink.close()
    assert handed_over < 0.1, handed_over
    assert [value for _, value in encoded] == [0, 0, 20, 30]  # slot 1 (dropped) repeats frame 0
    assert {name for name, _ in encoded} == {"talkinghead-live-encode"}
    assert sink.written == 4 and sum(1 for _ in VideoReader(tmp_path / "sink.mp4")) == 4


def test_an_encoder_error_reaches_the_caller(tmp_path):
    sink = FileSink(tmp_path / "sink.mp4", fps=10.0)

    def broken(image: np.ndarray) -> None:
        raise OSError("disk full")

    sink.writer.write = broken
    sink.write(0, np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(OSError, match="disk full"):
        sink.close()


def test_latency_is_measured_once_the_frame_is_displayed(driver, tmp_path, monkeypatch):
    """A window that takes 80 ms to show a frame: each latency handed to ``on_frame`` (and counted) includes it,
    i.e. it runs from capture to display, not to the end of G."""
    _, points = driver_clip(1)
    shown_at: list[float] = []

    class SlowWindow:
        def show(self, image: np.ndarray) -> bool:
            time.sleep(0.08)
            shown_at.append(time.perf_counter())
            return True

        def close(self) -> None:
            pass

    monkeypatch.setattr(live, "WindowSink", SlowWindow)
    seen: list[tuple[float, float]] = []
    stats = run_live(tiny_avatar(landmarks=lambda image, previous: points[0].copy()), VideoFileSource(driver),
                     window=True, on_frame=lambda captured, image, latency: seen.append((captured.time, latency)))
    assert len(seen) == len(shown_at) == stats.rendered > 3
    for (captured_at, latency), displayed in zip(seen, shown_at, strict=True):
        assert latency >= (displayed - captured_at) * 1000.0 >= 80.0
    assert stats.latency.min_ms >= 80.0


def test_the_avatar_is_warmed_up_before_the_first_camera_frame_is_taken(tmp_path):
    """The first renders trace and allocate (hundreds of ms for warp-256): they happen before the camera is read,
    so the first camera frames are not dropped behind them."""
    _, points = driver_clip(3)
    avatar = tiny_avatar(landmarks=lambda image, previous: points[0].copy())
    events: list[str] = []
    generate = avatar._generate
    avatar._generate = lambda *args, **kwargs: events.append("render") or generate(*args, **kwargs)
    frames, _ = driver_clip(3)

    class Camera:
        fps, name = 25.0, "camera"

        def frames(self):
            events.append("camera read")
            yield from frames

        def close(self) -> None:
            pass

    stats = run_live(avatar, Camera(), output=tmp_path / "live.mp4")
    first_read = events.index("camera read")
    assert first_read == live.WARM_UP_RENDERS and set(events[:first_read]) == {"render"}, events
    assert stats.warm_up_seconds > 0 and stats.rendered >= 1


class HangingCamera:
    """Delivers ``frames`` at 25 fps, then hangs in its read (a camera that stops without an error) until
    ``release`` is set."""

    fps, name = 25.0, "hanging camera"

    def __init__(self, frames: np.ndarray) -> None:
        self._frames = frames
        self.release = threading.Event()
        self.closed = False

    def frames(self):
        for frame in self._frames:
            time.sleep(0.04)
            yield frame
        self.release.wait(60)

    def close(self) -> None:
        self.closed = True


def _run_in_thread(**kwargs) -> tuple[threading.Thread, list]:
    """run_live in a thread, so that a run that never returns fails the test instead of hanging it."""
    result: list = []

    def run() -> None:
        try:
            result.append(run_live(**kwargs))
        except Exception as error:  # noqa: BLE001 - checked by the test
            result.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


@pytest.mark.parametrize("frames", [3, 0])
def test_a_producer_that_hangs_ends_the_run_within_a_bound(tmp_path, frames):
    """The source stops delivering without ending: live stops after ``stall_seconds`` of silence (or at its
    ``seconds``), writes what was shown (a camera that never delivered is a clear error), and leaves no landmarks
    thread looping behind it; the hung capture thread is the one thing left (not closed under its read)."""
    clip, points = driver_clip(max(frames, 1))
    camera = HangingCamera(clip[:frames])
    avatar = tiny_avatar(landmarks=lambda image, previous: points[0].copy())
    output = tmp_path / "live.mp4"
    options = {"stall_seconds": 0.5} if frames else {"stall_seconds": None, "seconds": 0.5}
    started = time.perf_counter()
    thread, result = _run_in_thread(avatar=avatar, source=camera, output=output, **options)
    try:
        thread.join(timeout=8.0)
        assert not thread.is_alive(), "live did not return while its producer hung"
        assert time.perf_counter() - started < 6.0
        assert not [t.name for t in threading.enumerate() if t.name.startswith("talkinghead-live-source")]
        assert not camera.closed
        if not frames:
            assert isinstance(result[0], live.LiveError) and "delivered no frame" in str(result[0]), result
            assert not output.exists()
            return
        stats = result[0]
        assert stats.stalled
        assert (stats.produced, stats.rendered + stats.dropped) == (frames, frames)
        assert sum(1 for _ in VideoReader(output)) == stats.written == frames
    finally:
        camera.release.set()


def test_a_lost_face_repeats_the_last_picture_and_is_looked_for_less_often(tmp_path):
    """Frames 3-14 have no face. Each shows the last picture (the held landmarks give the same image, so G is not
    run again), and after 3 misses in a row the face is looked for on every third frame only: 6 looks instead of
    12, the face found again at frame 15 (a look falls on it). A lockstep camera: nothing is dropped."""
    clip, points = driver_clip(18)
    faceless = set(range(3, 15))
    looked: list[int] = []

    def landmarks(image, previous):
        index = int(image[0, 0, 0]) // 10
        looked.append(index)
        return None if index in faceless else points[index].copy()

    frames = clip.copy()
    frames[:, 0, 0, :] = (np.arange(18) * 10)[:, None]  # the frame's index, where the landmarks stand-in reads it
    avatar = tiny_avatar(landmarks=landmarks)
    generated: list[int] = []  # one entry per G call
    generate = avatar._generate
    rendered = threading.Event()

    class Lockstep:
        fps, name = 25.0, "lockstep"

        def frames(self):
            for frame in frames:
                yield frame
                assert rendered.wait(30)
                rendered.clear()

        def close(self) -> None:
            pass

    shown: list[np.ndarray] = []

    def on_frame(captured, image, latency_ms):
        shown.append(image[30:, -256:])  # the avatar panel, below the text band
        rendered.set()

    avatar._generate = lambda *args, **kwargs: generated.append(1) or generate(*args, **kwargs)
    stats = run_live(avatar, Lockstep(), output=tmp_path / "live.mp4", smooth=False, on_frame=on_frame,
                     warm=False)
    assert (stats.rendered, stats.dropped, stats.held) == (18, 0, 12)
    assert looked == [0, 1, 2, 3, 4, 5, 6, 9, 12, 15, 16, 17]
    assert len(generated) == 18 - len(faceless)  # G ran for the frames with a face only
    for index in faceless:  # (that a held frame's image is G's for the held landmarks: test_inference's live test)
        np.testing.assert_array_equal(shown[index], shown[2])


def test_live_command_renders_the_avatar_at_size(driver, tmp_path):
    """``--size N`` reaches the per-frame loop: at 320 the shown frame is camera | avatar 320 px high."""
    avatar_path = tmp_path / "tiny.avatar"
    tiny_avatar().save(avatar_path)
    output = tmp_path / "live.mp4"
    assert cli.main(["live", "--avatar", str(avatar_path), "--driver", str(driver), "--out", str(output),
                     "--no-window", "--size", "320"]) == 0
    assert next(iter(VideoReader(output))).shape == (320, 640, 3)
