"""The landmark functions personalization and animation call: one on still pictures, one per driver video.

    landmarks = default_landmarks()                  # DetectorLandmarks("dlib")
    points = find_face(landmarks, picture, "a.jpg")  # [68, 2] on a still (upscaled 2x/4x when the face is small)
    track = driver_tracker(landmarks, "talk.mp4")    # per driver: detect rarely, track in between (FaceTracker)
    points = track(frame)                            # [68, 2] or None when the frame has no face

Any `LandmarkFn` can stand in for `DetectorLandmarks` (e.g. known landmarks in tests); `driver_tracker` then
calls it on every frame with the previous frame's landmarks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import cv2
import numpy as np

from talkinghead.landmarks.backends import NoFaceError, choose_face, get_backend, landmarks_box
from talkinghead.landmarks.tracking import FaceTracker

log = logging.getLogger(__name__)

LandmarkFn = Callable[[np.ndarray, "np.ndarray | None"], "np.ndarray | None"]
"""landmarks(image uint8 [H,W,3], previous [68,2] or None) -> [68,2] float32 in the image's pixels, or None."""
FrameLandmarks = Callable[[np.ndarray], "np.ndarray | None"]
"""track(frame uint8 [H,W,3]) -> [68,2] float32 or None, called on one video's consecutive frames (it keeps state);
made per driver by `driver_tracker`."""

MAX_UPSCALED_SIDE = 4096
"""`find_face` does not upscale a picture beyond this side (pixels)."""


class NoFaceFound(NoFaceError, ValueError):
    """`find_face` found no face in a picture: the landmarks room's `NoFaceError`, and a ValueError as before, so a
    caller can skip such a picture (a video's frame) without also swallowing other errors."""


class DetectorLandmarks:
    """The project's landmark backend for inference.

    Called as a `LandmarkFn` (sources: still pictures) it detects faces, keeps the one overlapping
    ``previous`` (else the largest, most central) and fits its 68 points. ``tracker(name)`` gives the
    per-frame function for a driver video: `FaceTracker` (detects on the first frame, every ``detect_every``
    frames and when tracking is lost; tracks in between; keeps following the same face).
    """

    def __init__(self, backend: str = "dlib", detect_every: int = 25, verify_every: int = 3,
                 work_side: int | None = None):
        self.detector = get_backend(backend)
        self.detect_every = detect_every
        self.verify_every = verify_every
        self.work_side = work_side  # track driver frames downscaled to this longer side (None: full resolution)

    def __call__(self, image: np.ndarray, previous: np.ndarray | None) -> np.ndarray | None:
        boxes = self.detector.detect_faces(image)
        if not boxes:
            return None
        previous_box = landmarks_box(previous) if previous is not None else None
        box = choose_face(boxes, (image.shape[1], image.shape[0]), previous_box)
        return np.asarray(self.detector.landmarks(image, box), dtype=np.float32)

    def tracker(self, source: str = "<driver>") -> FrameLandmarks:
        tracker = FaceTracker(self.detector, detect_every=self.detect_every, verify_every=self.verify_every,
                              source=source, work_side=self.work_side)

        def track(frame: np.ndarray) -> np.ndarray | None:
            points = tracker(frame)[0]
            return None if points is None else np.asarray(points, dtype=np.float32)

        return track


def default_landmarks(backend: str = "dlib") -> DetectorLandmarks:
    """The project's landmark backend: detection on stills, `FaceTracker` on driver videos."""
    return DetectorLandmarks(backend)


def driver_tracker(landmarks: LandmarkFn, source: str = "<driver>") -> FrameLandmarks:
    """A fresh per-frame landmarks function for one driver's consecutive frames: the landmarks' own
    ``tracker(source)`` when it has one (`DetectorLandmarks`: detect rarely, track in between), else the
    `LandmarkFn` called on every frame with the previous frame's landmarks (e.g. an injected function)."""
    make_tracker = getattr(landmarks, "tracker", None)
    if callable(make_tracker):
        return make_tracker(source)
    previous: np.ndarray | None = None

    def follow(frame: np.ndarray) -> np.ndarray | None:
        nonlocal previous
        points = landmarks(frame, previous)
        if points is not None:
            previous = points
        return points

    return follow


def find_face(landmarks: LandmarkFn, image: np.ndarray, name: str) -> np.ndarray:
    """Landmarks [68, 2] of the face in a still picture; a small face missed by the detector is looked for again
    at 2x and 4x. Raises `NoFaceFound` (a ValueError) naming ``name`` when there is no face."""
    points = landmarks(image, None)
    if points is not None:
        return points
    for factor in (2, 4):
        if max(image.shape[:2]) * factor > MAX_UPSCALED_SIDE:
            break
        bigger = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        points = landmarks(bigger, None)
        if points is not None:
            log.warning("%s: the face is small; it was found after upscaling the picture %dx", name, factor)
            return (points / factor).astype(np.float32)
    raise NoFaceFound(f"{name}: no face found; use a picture with one clearly visible, roughly frontal face")
