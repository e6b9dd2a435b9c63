"""Live mode (`talkinghead live`): the face in front of a camera drives an avatar, frame by frame.

    source = CameraSource(0)                     # or VideoFileSource("talk.mp4"): a file paced like a camera
    stats = run_live(avatar, source, window=True, output="live.mp4")

A producer thread reads the source at its own pace (a camera delivers frames when it has them; a video file is
released frame by frame at its fps in real time) into a `LatestFrame` slot that holds one frame. The renderer
always takes the newest frame: when the model (landmarks + retargeting + G) is slower than the camera, the frames
it never took are dropped and counted, never queued, so the delay stays one frame's work instead of growing.

Each rendered frame shows the camera | the avatar, with the capture-to-display latency, the rendering rate and
the dropped count drawn on it, in a window (when there is a display) and/or written to a video file. Each
frame goes through the same per-frame loop as `talkinghead animate` (`talkinghead.animation.FrameAnimator`):
landmarks tracked, smoothed with the One-Euro filter at the measured rate between rendered frames (which varies
when frames are dropped), retargeted onto the avatar (relative by default), rendered by G.

The file holds one frame per source frame: a dropped frame's slot repeats the frame that was on screen, so the
file plays in real time at the source's fps and has as many frames as the source delivered.

The newest frame is located (tracked, smoothed) and planned (retargeted, drawn, the warp sources' mesh grids) in a
thread of its own while the previous frame renders (`talkinghead.pipeline`), taken as late as lets it be ready
when the renderer is free (`_Pace`): the rate is set by the slower stage, not their sum, and the latency stays
about one frame's work.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from talkinghead.animation import AnimationFrame, FrameAnimator, PlannedFrame
from talkinghead.pipeline import pipeline

log = logging.getLogger(__name__)

DISPLAY_HEIGHT = 256
"""Height of the shown frame (camera | avatar): small models (64 px) are scaled up to stay readable."""
WINDOW_TITLE = "talkinghead live (q or Esc quits)"


class LiveError(RuntimeError):
    """The camera, the window or the output cannot be used; the message says what to do instead."""


# --- the one-frame slot ------------------------------------------------------------------------------------------


@dataclass
class Captured:
    """A frame as the source delivered it."""

    index: int
    """Position in the source (0, 1, 2, ...), counting the frames that are later dropped."""
    time: float
    """`time.perf_counter()` when it was captured (released, for a file)."""
    frame: np.ndarray
    """uint8 RGB [H, W, 3]."""


class LatestFrame:
    """A slot holding at most one frame: `put` replaces a frame nobody took (counted in ``dropped``), `take`
    waits for a frame and empties the slot. After `close`, `take` returns what is left, then None."""

    def __init__(self) -> None:
        self._item: Captured | None = None
        self._closed = False
        self._condition = threading.Condition()
        self.produced = 0
        self.dropped = 0

    def put(self, item: Captured) -> None:
        with self._condition:
            if self._closed:
                raise RuntimeError("put on a closed LatestFrame")
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self.produced += 1
            self._condition.notify_all()

    def take(self, timeout: float | None = None) -> Captured | None:
        """The newest frame (waiting up to ``timeout`` seconds, forever when None); None when the slot is closed
        and empty, or on timeout."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._item is not None or self._closed, timeout):
                return None
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()


# --- frame sources -----------------------------------------------------------------------------------------------


class VideoFileSource:
    """A video file standing in for a camera: frame i is released at start + i / fps (real time), whatever the
    consumer does, so a slow consumer misses frames exactly as it would with a camera."""

    def __init__(self, path: str | os.PathLike[str], clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        from talkinghead.video import VideoReader

        self.reader = VideoReader(path)
        self.fps = self.reader.fps
        self.name = str(path)
        self._clock = clock
        self._sleep = sleep

    def frames(self) -> Iterator[np.ndarray]:
        start = self._clock()
        for index, frame in enumerate(self.reader):
            wait = start + index / self.fps - self._clock()
            if wait > 0:
                self._sleep(wait)
            yield frame

    def close(self) -> None:
        pass


class CameraSource:
    """A camera through OpenCV (``cv2.VideoCapture(index)``); frames arrive at the camera's pace."""

    def __init__(self, index: int = 0) -> None:
        import cv2

        self.capture = cv2.VideoCapture(index)
        if not self.capture.isOpened():
            self.capture.release()
            raise LiveError(f"camera {index} cannot be opened (no such camera, or it is in use); try another "
                            "--camera number, or drive from a file with --driver video.mp4")
        reported = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = reported if 1.0 <= reported <= 240.0 else 30.0
        self.name = f"camera {index}"

    def frames(self) -> Iterator[np.ndarray]:
        while True:
            ok, bgr = self.capture.read()
            if not ok:
                log.warning("%s stopped delivering frames", self.name)
                return
            yield np.ascontiguousarray(bgr[:, :, ::-1])

    def close(self) -> None:
        self.capture.release()


# --- statistics, composition, outputs ----------------------------------------------------------------------------


@dataclass
class LiveStats:
    """What a live run did: frames delivered, rendered and dropped, and the latency of each rendered frame.
    When the source ends, delivered = rendered + dropped; stopped early, the last delivered frame may be neither."""

    produced: int = 0
    rendered: int = 0
    dropped: int = 0
    held: int = 0
    written: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    """Capture to ready-to-show, per rendered frame."""

    @property
    def drop_rate(self) -> float:
        return self.dropped / self.produced if self.produced else 0.0

    def summary(self) -> dict:
        latencies = np.asarray(self.latencies_ms or [float("nan")])
        return {"frames_delivered": self.produced, "frames_rendered": self.rendered, "frames_dropped": self.dropped,
                "drop_rate": round(self.drop_rate, 4), "frames_without_face": self.held,
                "frames_written": self.written, "seconds": round(self.seconds, 3),
                "rendered_fps": round(self.rendered / self.seconds, 2) if self.seconds else 0.0,
                "latency_ms_median": round(float(np.median(latencies)), 2),
                "latency_ms_p95": round(float(np.percentile(latencies, 95)), 2),
                "latency_ms_max": round(float(latencies.max()), 2)}


def compose(camera: np.ndarray, generated: np.ndarray, text: str, height: int = DISPLAY_HEIGHT) -> np.ndarray:
    """camera | avatar (with the synthetic mark) at ``height`` (at least the avatar's size), the text on a dark
    band at the top."""
    import cv2

    from talkinghead.compose import draw_synthetic_mark, fit_height

    height = max(height, generated.shape[0])
    left = fit_height(camera, height)
    right = draw_synthetic_mark(cv2.resize(generated, (height, height), interpolation=cv2.INTER_LINEAR))
    image = np.concatenate([left, right], axis=1)
    scale = height / 256.0
    band = max(14, round(22 * scale))
    image[:band] = (image[:band] * 0.3).astype(np.uint8)
    cv2.putText(image, text, (round(6 * scale), band - max(4, round(7 * scale))), cv2.FONT_HERSHEY_SIMPLEX,
                0.45 * scale, (255, 255, 255), max(1, round(scale)), cv2.LINE_AA)
    return image


class FileSink:
    """The shown frames as a video at the source's fps: a frame is repeated over the slots of the source frames
    dropped before the next rendered one, so the file plays in real time."""

    def __init__(self, path: str | os.PathLike[str], fps: float) -> None:
        from talkinghead.compose import SYNTHETIC_TAG
        from talkinghead.video import VideoWriter

        self.writer = VideoWriter(path, fps=fps, metadata={"comment": SYNTHETIC_TAG, "synthetic": "true",
                                                            "generator": "talkinghead live"})
        self.writer.__enter__()
        self._last: np.ndarray | None = None
        self._last_index = -1

    def write(self, index: int, image: np.ndarray) -> None:
        if self._last is not None and image.shape != self._last.shape:
            raise ValueError(f"live frame {index} is {image.shape}, the video is {self._last.shape}")
        for _ in range(index - self._last_index - 1):
            self.writer.write(self._last if self._last is not None else image)
        self.writer.write(image)
        self._last, self._last_index = image, index

    @property
    def written(self) -> int:
        return self.writer.num_frames

    def close(self, error: BaseException | None = None) -> None:
        self.writer.__exit__(type(error) if error else None, error, None)


def window_unavailable() -> str | None:
    """Why no live window can be shown here (no display, or an OpenCV without windows), or None when it can."""
    import cv2

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "there is no display (DISPLAY is not set)"
    try:
        cv2.namedWindow(WINDOW_TITLE, cv2.WINDOW_AUTOSIZE)
    except cv2.error:
        return "this OpenCV build has no windows (opencv-python-headless; install opencv-python for them)"
    cv2.destroyWindow(WINDOW_TITLE)
    return None


class WindowSink:
    """An OpenCV window; ``show`` returns False when the user pressed q or Esc, or closed the window."""

    def __init__(self) -> None:
        import cv2

        reason = window_unavailable()
        if reason is not None:
            raise LiveError(f"no live window: {reason}; write the result with --out live.mp4")
        cv2.namedWindow(WINDOW_TITLE, cv2.WINDOW_AUTOSIZE)

    def show(self, image: np.ndarray) -> bool:
        import cv2

        cv2.imshow(WINDOW_TITLE, np.ascontiguousarray(image[:, :, ::-1]))
        key = cv2.waitKey(1) & 0xFF
        visible = cv2.getWindowProperty(WINDOW_TITLE, cv2.WND_PROP_VISIBLE) >= 1
        return key not in (ord("q"), 27) and visible

    def close(self) -> None:
        import cv2

        cv2.destroyWindow(WINDOW_TITLE)


# --- the loop ------------------------------------------------------------------------------------------------


class _Pace:
    """When the landmarks thread takes the next frame: only after the renderer took the last one (so at most one
    located frame waits), and not before ``busy - locate`` seconds into the renderer's current frame, so that the
    newest frame is taken as late as lets its landmarks be ready when the renderer is. ``busy`` (the renderer's
    work per frame, not counting its waits) and ``locate`` are running means."""

    def __init__(self, weight: float = 0.3) -> None:
        self.turn = threading.Semaphore(1)
        self.weight = weight
        self.busy = 0.0
        self.locate = 0.0
        self.taken_at: float | None = None

    def renderer_took(self) -> None:
        self.taken_at = time.perf_counter()
        self.turn.release()

    def renderer_done(self) -> None:
        if self.taken_at is not None:
            self.busy += self.weight * (time.perf_counter() - self.taken_at - self.busy)

    def keep_turn(self) -> None:
        self.turn.release()

    def located(self, seconds: float) -> None:
        self.locate += self.weight * (seconds - self.locate)

    def wait_for_turn(self) -> None:
        self.turn.acquire()
        if self.taken_at is not None:
            wait = self.taken_at + self.busy - self.locate - time.perf_counter()
            if wait > 0:
                time.sleep(min(wait, 1.0))


def run_live(avatar, source, *, window: bool = False, output: str | os.PathLike[str] | None = None,
             mode: str = "relative", smooth: bool = True, seconds: float | None = None,
             animator: Callable[[np.ndarray, float], AnimationFrame] | None = None,
             on_frame: Callable[[Captured, np.ndarray, float], None] | None = None) -> LiveStats:
    """Drive ``avatar`` from ``source`` (`CameraSource`, `VideoFileSource`, or anything with ``fps``, ``name``,
    ``frames()`` and ``close()``) until the source ends, the window is closed (q/Esc), ``seconds`` pass or
    Ctrl-C. ``animator(frame, captured_at) -> AnimationFrame`` replaces the `FrameAnimator` of ``avatar`` (the
    per-frame loop of `talkinghead animate`, smoothing at the capture times);
    ``on_frame(captured, shown image, latency_ms)`` sees every rendered frame. Returns `LiveStats`."""
    if not window and output is None:
        raise LiveError("nothing would show the result: open a window, or write it with --out live.mp4")
    try:
        animate = animator or FrameAnimator(avatar, mode, smooth=smooth, fps=source.fps, source=source.name)
        shown_window = WindowSink() if window else None
        sink = FileSink(output, source.fps) if output is not None else None
    except BaseException:
        source.close()
        raise
    slot, stop = LatestFrame(), threading.Event()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            for index, frame in enumerate(source.frames()):
                if stop.is_set():
                    break
                slot.put(Captured(index, time.perf_counter(), frame))
        except BaseException as error:  # noqa: BLE001 - handed to the main thread, which raises it
            failure.append(error)
        finally:
            slot.close()

    stats = LiveStats()
    producer = threading.Thread(target=produce, name="talkinghead-live-source", daemon=True)
    started = time.perf_counter()
    error: BaseException | None = None
    producer.start()
    split = animator is None  # a FrameAnimator: its landmarks stage runs in a thread of its own
    pace = _Pace()

    def newest() -> Iterator[tuple[Captured, PlannedFrame | None]]:
        """The newest frame each time the renderer is about to be ready for one, planned (landmarks tracked and
        smoothed at the capture time, retargeted, drawn, the warp sources' grids) when the loop is split. Runs in
        the pipeline's source thread: planning frame i + 1 overlaps rendering frame i, and starts late enough that
        frame i + 1 is fresh when it renders."""
        while True:
            pace.wait_for_turn()
            item = slot.take(timeout=0.5)
            if item is None:
                if not producer.is_alive():
                    return
                pace.keep_turn()  # nothing taken
                continue
            started = time.perf_counter()
            planned = animate.plan(animate.locate(item.frame, item.time), item.frame) if split else None
            pace.located(time.perf_counter() - started)
            yield item, planned

    frames = pipeline(newest(), [], depth=1, name="talkinghead-live")
    try:
        for item, planned in frames:
            pace.renderer_took()
            animated = animate.render(planned) if split else animate(item.frame, item.time)
            generated, held = animated.image, animated.held
            latency_ms = (time.perf_counter() - item.time) * 1000.0
            stats.rendered += 1
            stats.held += int(held)
            stats.latencies_ms.append(latency_ms)
            elapsed = time.perf_counter() - started
            text = (f"latency {latency_ms:.0f} ms  {stats.rendered / max(elapsed, 1e-6):.1f} fps  "
                    f"dropped {slot.dropped}/{slot.produced}")
            image = compose(item.frame, generated, text)
            if on_frame is not None:
                on_frame(item, image, latency_ms)
            if sink is not None:
                sink.write(item.index, image)
            if shown_window is not None and not shown_window.show(image):
                break
            if seconds is not None and elapsed >= seconds:
                break
            pace.renderer_done()
    except KeyboardInterrupt:
        log.info("live: stopped by Ctrl-C")
    except BaseException as raised:
        error = raised
        raise
    finally:
        stop.set()
        producer.join(timeout=5.0)  # it sees `stop` after at most one frame (a file's next frame, a camera's read)
        pace.keep_turn()  # a landmarks thread waiting for its turn sees the closed slot
        frames.close()  # the landmarks thread ends once the producer has closed the slot
        source.close()
        stats.seconds = time.perf_counter() - started
        stats.produced, stats.dropped = slot.produced, slot.dropped
        if sink is not None:
            sink.close(error)
            stats.written = sink.written if error is None else 0
        if shown_window is not None:
            shown_window.close()
    if failure:
        raise failure[0]
    return stats


def write_summary(stats: LiveStats, output: str | os.PathLike[str] | None) -> str:
    """One line for the command: frames delivered/rendered/dropped, latency, the file written."""
    s = stats.summary()
    line = (f"live: {s['frames_delivered']} frames delivered, {s['frames_rendered']} rendered, "
            f"{s['frames_dropped']} dropped ({100 * s['drop_rate']:.0f}%); latency median "
            f"{s['latency_ms_median']:.0f} ms, p95 {s['latency_ms_p95']:.0f} ms")
    if output is not None:
        line += f"; wrote {Path(output)} ({s['frames_written']} frames)"
    return line


__all__ = ["Captured", "CameraSource", "FileSink", "LatestFrame", "LiveError", "LiveStats",
           "VideoFileSource", "WindowSink", "compose", "run_live", "window_unavailable", "write_summary"]
