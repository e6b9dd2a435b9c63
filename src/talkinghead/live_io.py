"""Live mode's inputs and outputs: cameras and video files standing in for them, the shown frame (camera | avatar
with the figures drawn on it), and where it goes (a window, a video file encoded in a thread of its own).
`talkinghead.live` runs the loop between them."""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

log = logging.getLogger(__name__)

DISPLAY_HEIGHT = 256
"""Height of the shown frame (camera | avatar): small models (64 px) are scaled up to stay readable."""
WINDOW_TITLE = "talkinghead live (q or Esc quits)"


class LiveError(RuntimeError):
    """The camera, the window or the output cannot be used; the message says what to do instead."""


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


# --- the shown frame and where it goes -----------------------------------------------------------------------------


def compose(camera: np.ndarray, generated: np.ndarray, text: str, height: int = DISPLAY_HEIGHT) -> np.ndarray:
    """camera | avatar (with the synthetic mark) at ``height`` (at least the avatar's size), the text on a dark
    band at the top; the camera panel loses its last column when its width is odd."""
    import cv2

    from talkinghead.compose import draw_synthetic_mark, fit_height

    height = max(height, generated.shape[0])
    left = fit_height(camera, height)
    left = left[:, : left.shape[1] - left.shape[1] % 2]  # an even width: H.264 would pad every frame otherwise
    right = draw_synthetic_mark(cv2.resize(generated, (height, height), interpolation=cv2.INTER_LINEAR))
    image = np.concatenate([left, right], axis=1)
    scale = height / 256.0
    band = max(14, round(22 * scale))
    image[:band] = (image[:band] * 0.3).astype(np.uint8)
    cv2.putText(image, text, (round(6 * scale), band - max(4, round(7 * scale))), cv2.FONT_HERSHEY_SIMPLEX,
                0.45 * scale, (255, 255, 255), max(1, round(scale)), cv2.LINE_AA)
    return image


FILE_PRESET = "veryfast"
"""x264's preset for the live file: the encoder shares the cores with dlib and G, and at 512x256 "veryfast" takes
~2.6 ms of CPU a frame against "medium"'s ~5.9 (animate's), for a file ~12 % larger."""


class FileSink:
    """The shown frames as a video at the source's fps: a frame is repeated over the slots of the source frames
    dropped before the next rendered one, so the file plays in real time.

    H.264 encoding takes several ms a frame (more than compose and display together), so it runs in a thread of
    its own: `write` only hands the frame over, and the render loop is free for the next camera frame. At most
    ``queue_frames`` frames wait between them (flat memory); when the encoder falls that far behind, `write`
    waits for it, since every source frame must reach the file. An encoder error is raised by the next `write`
    or by `close`."""

    def __init__(self, path: str | os.PathLike[str], fps: float, queue_frames: int = 8) -> None:
        from talkinghead.compose import SYNTHETIC_TAG
        from talkinghead.video import VideoWriter

        self.writer = VideoWriter(path, fps=fps, preset=FILE_PRESET,
                                  metadata={"comment": SYNTHETIC_TAG, "synthetic": "true",
                                            "generator": "talkinghead live"})
        self.writer.__enter__()
        self._queue: queue.Queue[tuple[np.ndarray, int] | None] = queue.Queue(maxsize=queue_frames)
        self._error: BaseException | None = None
        self._shape: tuple[int, ...] | None = None
        self._last_index = -1
        self._closed = False
        self._thread = threading.Thread(target=self._encode, name="talkinghead-live-encode", daemon=True)
        self._thread.start()

    def _encode(self) -> None:
        last: np.ndarray | None = None
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue  # keep draining, so that `write` never waits on a dead encoder
            image, gap = item
            try:
                for _ in range(gap):
                    self.writer.write(last if last is not None else image)
                self.writer.write(image)
            except BaseException as error:  # noqa: BLE001 - raised in the render thread by write/close
                self._error = error
            last = image

    def write(self, index: int, image: np.ndarray) -> None:
        """Hand the frame shown for source frame ``index`` to the encoder (the frame must not change later)."""
        if self._error is not None:
            raise self._error
        if self._shape is not None and image.shape != self._shape:
            raise ValueError(f"live frame {index} is {image.shape}, the video is {self._shape}")
        self._shape = image.shape
        gap, self._last_index = index - self._last_index - 1, index
        self._queue.put((image, max(gap, 0)))

    @property
    def written(self) -> int:
        return self.writer.num_frames

    def close(self, error: BaseException | None = None) -> None:
        """Encode what waits, then finish the file (or, after ``error``, let the writer discard it). Raises the
        encoder's own error when there was no other."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        error = error or self._error
        self.writer.__exit__(type(error) if error else None, error, None)
        if self._error is not None and error is self._error:
            raise self._error


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


__all__ = ["CameraSource", "DISPLAY_HEIGHT", "FILE_PRESET", "FileSink", "LiveError", "VideoFileSource",
           "WINDOW_TITLE", "WindowSink", "compose", "window_unavailable"]
