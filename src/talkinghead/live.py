"""Live mode (`talkinghead live`): the face in front of a camera drives an avatar, frame by frame.

    source = CameraSource(0)                     # or VideoFileSource("talk.mp4"): a file paced like a camera
    stats = run_live(avatar, source, window=True, output="live.mp4")

A producer thread reads the source at its own pace (a camera delivers frames when it has them; a video file is
released frame by frame at its fps in real time) into a `LatestFrame` slot that holds one frame. The renderer
always takes the newest frame: when the model (landmarks + retargeting + G) is slower than the camera, the frames
it never took are dropped and counted, never queued, so the delay stays one frame's work instead of growing.

Before the camera is read, the avatar is warmed up (`warm_up`: the first renders trace and allocate, hundreds of
ms that would otherwise drop the first frames). Each rendered frame shows the camera | the avatar, with the
rendering rate, the dropped count and the latency drawn on it, in a window (when there is a display) and/or
written to a video file, encoded in a thread of its own (`FileSink`). The latency is capture to display: from
the frame's capture to the moment the composed frame was shown and handed to the encoder (so the one drawn is
the previous frame's), kept in a fixed-size histogram (`LatencyHistogram`) however long the run. Each
frame goes through the same per-frame loop as `talkinghead animate` (`talkinghead.animation.FrameAnimator`):
landmarks tracked, smoothed with the One-Euro filter at the measured rate between rendered frames (which varies
when frames are dropped), retargeted onto the avatar (relative by default), rendered by G; a frame without a face
holds the last landmarks, so it shows the last picture again without running G.

The file holds one frame per source frame: a dropped frame's slot repeats the frame that was on screen, so the
file plays in real time at the source's fps and has as many frames as the source delivered.

The newest frame is located (tracked, smoothed) and planned (retargeted, drawn, the warp sources' mesh grids) in a
thread of its own while the previous frame renders (`talkinghead.pipeline`), taken as late as lets it be ready
when the renderer is free (`_Pace`): the rate is set by the slower stage, not their sum, and the latency stays
about one frame's work. The run ends when the source ends, the window is closed, ``seconds`` pass, or the source
has delivered nothing for ``stall_seconds`` (a camera that hangs in its read: its thread is left behind, the
run's own threads end). The sources, the composition and the outputs are in `talkinghead.live_io`.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from talkinghead.animation import AnimationFrame, FrameAnimator, PlannedFrame
from talkinghead.live_io import (
    DISPLAY_HEIGHT,
    CameraSource,
    FileSink,
    LiveError,
    VideoFileSource,
    WindowSink,
    compose,
    window_unavailable,
)
from talkinghead.pipeline import pipeline

log = logging.getLogger(__name__)


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
        self.last_put = time.perf_counter()
        """When the last frame came (or the slot was made): how long the source has been silent."""

    def put(self, item: Captured) -> bool:
        """Offer a frame; False (and the frame is not counted) once the slot is closed: a producer that hung
        past the end of the run may still deliver one."""
        with self._condition:
            if self._closed:
                return False
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self.produced += 1
            self.last_put = time.perf_counter()
            self._condition.notify_all()
            return True

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

    @property
    def closed(self) -> bool:
        return self._closed


# --- statistics, composition, outputs ----------------------------------------------------------------------------


class LatencyHistogram:
    """Latencies (ms) counted in log-spaced bins 1 % wide, from 0.1 ms to 10 minutes: a live run can last for
    hours at 25 frames a second, so a list of every latency would grow without bound; these bins take a fixed
    ~12 kB whatever the run's length. A quantile is the geometric middle of its bin, within 0.5 % of the exact
    one (clipped to the exact minimum and maximum, which are kept)."""

    LOW_MS = 0.1
    HIGH_MS = 600_000.0
    RATIO = 1.01

    def __init__(self) -> None:
        self._log_ratio = math.log(self.RATIO)
        bins = int(np.ceil(np.log(self.HIGH_MS / self.LOW_MS) / self._log_ratio)) + 1
        self.counts = np.zeros(bins, dtype=np.int64)
        self.count = 0
        self.total_ms = 0.0
        self.min_ms = float("inf")
        self.max_ms = float("-inf")

    def add(self, ms: float) -> None:
        ms = float(ms)
        clipped = min(max(ms, self.LOW_MS), self.HIGH_MS)
        self.counts[int(math.log(clipped / self.LOW_MS) / self._log_ratio)] += 1
        self.count += 1
        self.total_ms += ms
        self.min_ms = min(self.min_ms, ms)
        self.max_ms = max(self.max_ms, ms)

    def quantile(self, q: float) -> float:
        """The q-quantile (0 <= q <= 1, nearest rank) in ms; NaN before the first latency."""
        if not self.count:
            return float("nan")
        rank = min(self.count, max(1, int(np.ceil(q * self.count))))
        index = int(np.searchsorted(np.cumsum(self.counts), rank))
        middle = self.LOW_MS * self.RATIO ** (index + 0.5)
        return float(min(max(middle, self.min_ms), self.max_ms))

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """Add ``other``'s latencies to these (e.g. several runs pooled)."""
        self.counts += other.counts
        self.count += other.count
        self.total_ms += other.total_ms
        self.min_ms = min(self.min_ms, other.min_ms)
        self.max_ms = max(self.max_ms, other.max_ms)
        return self

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.count if self.count else float("nan")


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
    """From the first camera frame asked for (after the warm-up) to the end."""
    warm_up_seconds: float = 0.0
    """Tracing and first allocations, before the camera is read (`run_live`)."""
    stalled: bool = False
    """True when the run ended because the source delivered nothing for ``stall_seconds``."""
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    """Capture to display per rendered frame: from the moment the frame was captured to the moment the composed
    frame was shown in the window and handed to the file's encoder (bounded: `LatencyHistogram`)."""

    @property
    def drop_rate(self) -> float:
        return self.dropped / self.produced if self.produced else 0.0

    def summary(self) -> dict:
        latency = self.latency
        return {"frames_delivered": self.produced, "frames_rendered": self.rendered, "frames_dropped": self.dropped,
                "drop_rate": round(self.drop_rate, 4), "frames_without_face": self.held,
                "frames_written": self.written, "seconds": round(self.seconds, 3),
                "warm_up_seconds": round(self.warm_up_seconds, 3), "stalled": self.stalled,
                "rendered_fps": round(self.rendered / self.seconds, 2) if self.seconds else 0.0,
                "latency": "capture to display (window shown / frame handed to the encoder)",
                "latency_ms_median": round(latency.quantile(0.5), 2),
                "latency_ms_p95": round(latency.quantile(0.95), 2),
                "latency_ms_max": round(latency.max_ms, 2) if latency.count else float("nan")}


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


STALL_SECONDS = 10.0
"""A source that delivers no frame for this long (a camera that stopped without saying so) ends the run."""
PRODUCER_JOIN_SECONDS = 1.0
"""How long the end of a run waits for the capture thread: it sees the stop after its current frame (a camera's
read, a file's next frame); one that hangs longer is left behind (a daemon thread) and logged."""
LOST_FACE_GRACE = 3
"""A face missed for up to this many frames in a row (a blink of the detector, a hand) is looked for on each."""
LOST_FACE_EVERY = 3
"""After that, while the face stays lost, it is looked for on every third frame only (found again at most 2 frames,
80 ms at 25 fps, late)."""
WARM_UP_RENDERS = 3
"""TorchScript traces on its first call and specializes on its second (warp-256 on this machine: ~390, ~85, then
~37 ms); the third call runs at the steady rate."""


def warm_up(animate: Callable[[np.ndarray, float], AnimationFrame], avatar, renders: int = WARM_UP_RENDERS) -> float:
    """Run the per-frame path ``renders`` times on the avatar at rest, and the composition once, before any camera
    frame is taken: the first calls trace and allocate (hundreds of ms), which would otherwise drop the first
    camera frames and show a stale face. A `FrameAnimator` runs its own plan and render (same sizes, same
    runtime) on a shallow copy, so its frame count, tracking and smoothing are untouched; another animator is not
    called (it may hold state), the avatar's `render` is. Returns the seconds it took."""
    started = time.perf_counter()
    drive = getattr(copy.copy(animate), "drive", None)
    image = None
    for _ in range(renders):
        image = drive(None).image if callable(drive) else avatar.render(avatar.source_landmarks[0])[0]
    if image is not None:
        compose(np.zeros((DISPLAY_HEIGHT, DISPLAY_HEIGHT, 3), np.uint8), image, "warming up")
    return time.perf_counter() - started


def run_live(avatar, source, *, window: bool = False, output: str | os.PathLike[str] | None = None,
             mode: str = "relative", smooth: bool = True, seconds: float | None = None,
             animator: Callable[[np.ndarray, float], AnimationFrame] | None = None,
             on_frame: Callable[[Captured, np.ndarray, float], None] | None = None,
             warm: bool = True, stall_seconds: float | None = STALL_SECONDS, size: int | None = None) -> LiveStats:
    """Drive ``avatar`` from ``source`` (`CameraSource`, `VideoFileSource`, or anything with ``fps``, ``name``,
    ``frames()`` and ``close()``) until the source ends, the window is closed (q/Esc), ``seconds`` pass, the source
    delivers nothing for ``stall_seconds`` or Ctrl-C. ``animator(frame, captured_at) -> AnimationFrame`` replaces
    the `FrameAnimator` of ``avatar`` (the per-frame loop of `talkinghead animate`, smoothing at the capture
    times); ``on_frame(captured, shown image, latency_ms)`` sees every rendered frame once it is displayed, with
    its capture-to-display latency. ``warm``: `warm_up` the avatar before the camera is read. ``size``: the
    avatar's side in pixels (`FrameAnimator`'s; default the model's). Returns `LiveStats`."""
    if not window and output is None:
        raise LiveError("nothing would show the result: open a window, or write it with --out live.mp4")
    stats = LiveStats()
    shown_window: WindowSink | None = None
    sink: FileSink | None = None
    try:
        sized = {"size": size} if size is not None else {}
        animate = animator or FrameAnimator(avatar, mode, smooth=smooth, fps=source.fps, source=source.name, **sized)
        shown_window = WindowSink() if window else None
        sink = FileSink(output, source.fps) if output is not None else None
        if warm:
            stats.warm_up_seconds = warm_up(animate, avatar)
    except BaseException as error:
        if sink is not None:
            sink.close(error)
        if shown_window is not None:
            shown_window.close()
        source.close()
        raise
    slot, stop = LatestFrame(), threading.Event()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            for index, frame in enumerate(source.frames()):
                if stop.is_set() or not slot.put(Captured(index, time.perf_counter(), frame)):
                    break
        except BaseException as error:  # noqa: BLE001 - handed to the main thread, which raises it
            failure.append(error)
        finally:
            slot.close()

    producer = threading.Thread(target=produce, name="talkinghead-live-capture", daemon=True)
    started = time.perf_counter()
    deadline = started + seconds if seconds is not None else float("inf")
    error: BaseException | None = None
    producer.start()
    split = animator is None  # a FrameAnimator: its landmarks stage runs in a thread of its own
    pace = _Pace()

    def newest() -> Iterator[tuple[Captured, PlannedFrame | None, bool]]:
        """The newest frame each time the renderer is about to be ready for one, planned (landmarks tracked and
        smoothed at the capture time, retargeted, drawn, the warp sources' grids) when the loop is split. Runs in
        the pipeline's source thread: planning frame i + 1 overlaps rendering frame i, and starts late enough that
        frame i + 1 is fresh when it renders. Ends when the slot is closed (the source ended), the run stops, the
        deadline passes, or the source has been silent for ``stall_seconds`` (a hung producer cannot keep it).

        A frame without a face holds the last landmarks, so its picture is the last one: it is not planned again,
        and the renderer repeats its image (``repeat``) instead of running G on the same inputs. Once the face has
        been lost for `LOST_FACE_GRACE` frames, it is looked for on every `LOST_FACE_EVERY`-th frame only: each
        miss is a full-frame detection (18 ms at 224 px, ~46 ms at 720p), which on every frame would drop frames
        just when the user turns away."""
        lost, planned_any = 0, False
        while True:
            pace.wait_for_turn()
            if stop.is_set():
                return
            item = slot.take(timeout=0.1)
            if item is None:
                now = time.perf_counter()
                if slot.closed or now >= deadline:
                    return
                if stall_seconds is not None and now - slot.last_put > stall_seconds:
                    stats.stalled = True
                    log.warning("live: %s delivered no frame for %.1f s; stopping", source.name, stall_seconds)
                    return
                pace.keep_turn()  # nothing taken
                continue
            began = time.perf_counter()
            planned, repeat = None, False
            if split:
                look = lost < LOST_FACE_GRACE or lost % LOST_FACE_EVERY == 0
                points = animate.locate(item.frame, item.time) if look else None
                lost = 0 if points is not None else lost + 1
                repeat = points is None and planned_any  # the same held landmarks: the same picture as before
                planned = None if repeat else animate.plan(points, item.frame)
                planned_any = True
            pace.located(time.perf_counter() - began)
            yield item, planned, repeat

    frames = pipeline(newest(), [], depth=1, name="talkinghead-live")
    last_latency_ms = float("nan")
    last_animated: AnimationFrame | None = None
    interrupted = False
    empty: LiveError | None = None
    try:
        for item, planned, repeat in frames:
            pace.renderer_took()
            if repeat and last_animated is not None:
                animated = replace(last_animated, driver=item.frame, held=True, driver_landmarks=None)
            elif split:
                animated = animate.render(planned)
            else:
                animated = animate(item.frame, item.time)
            last_animated = animated
            stats.rendered += 1
            stats.held += int(animated.held)
            elapsed = time.perf_counter() - started
            # The latency drawn is the previous frame's: this frame's is known only once it is displayed.
            text = (f"latency {last_latency_ms:.0f} ms  {stats.rendered / max(elapsed, 1e-6):.1f} fps  "
                    f"dropped {slot.dropped}/{slot.produced}")
            image = compose(item.frame, animated.image, text)
            if sink is not None:
                sink.write(item.index, image)
            keep_going = shown_window is None or shown_window.show(image)
            last_latency_ms = (time.perf_counter() - item.time) * 1000.0
            stats.latency.add(last_latency_ms)
            if on_frame is not None:
                on_frame(item, image, last_latency_ms)
            if not keep_going or time.perf_counter() >= deadline:
                break
            pace.renderer_done()
    except KeyboardInterrupt:
        interrupted = True
        log.info("live: stopped by Ctrl-C")
    except BaseException as raised:
        error = raised
        raise
    finally:
        stop.set()
        slot.close()  # the landmarks thread's take returns at once
        pace.keep_turn()  # a landmarks thread waiting for its turn sees the stop
        frames.close()  # joins the landmarks thread, which ends at its next check of the stop
        producer.join(timeout=PRODUCER_JOIN_SECONDS)
        if producer.is_alive():
            log.warning("live: %s did not stop within %.1f s (a read that hangs); left behind, not closed",
                        source.name, PRODUCER_JOIN_SECONDS)
        else:
            source.close()
        stats.seconds = time.perf_counter() - started
        stats.produced, stats.dropped = slot.produced, slot.dropped
        if error is None and not failure and not interrupted and not stats.rendered:
            empty = LiveError(f"{source.name} delivered no frame" + (" and stopped" if stats.stalled else "")
                              + "; nothing was shown or written (is the camera in use, or covered?)")
        try:
            if sink is not None:
                sink.close(error or empty)
                stats.written = sink.written if (error or empty) is None else 0
        finally:
            if shown_window is not None:
                shown_window.close()
    if failure:
        raise failure[0]
    if empty is not None:
        raise empty
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


__all__ = ["Captured", "CameraSource", "FileSink", "LatencyHistogram", "LatestFrame", "LiveError", "LiveStats",
           "VideoFileSource", "WindowSink", "compose", "run_live", "warm_up", "window_unavailable", "write_summary"]
