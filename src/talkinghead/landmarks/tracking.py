"""68-point landmarks for still images and videos, detecting rarely and tracking in between.

Per-frame face detection is the slow path users of earlier implementations complain about (paper-notes
§6.4). `track_video` runs the full-frame detector on the first frame, every ``detect_every`` frames, and
whenever tracking fails. In between, the previous frame's landmarks seed the next frame: every
``verify_every`` frames the detector looks only in a small window around the previous landmarks' box
(downscaled so the face is ~100 px: a few ms whatever the frame size) and the landmarks are fitted in the
box it returns; on the other frames (or when that local look finds nothing, e.g. a turned head) the seed is
the previous landmarks' box, in the detector's framing and size measured at the last detection, refined
once on the new landmarks. A fit whose box overlaps its seed too little counts as lost and the frame is
re-detected. Seeding only from landmarks (never looking at the image) drifts on turning heads: a mis-fit
moves the next box, which moves the next fit; the local look bounds that to ``verify_every`` frames.

Several faces: the largest, most central face is chosen on the first detection and the one overlapping the
track afterwards (`backends.choose_face`); each choice among several faces is logged. No face in the whole
video: `NoFaceError` naming the file; missing frames in between are held from the nearest good frame and
flagged in `LandmarkTrack.status`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from talkinghead.landmarks.backends import (
    FaceBox,
    LandmarkBackend,
    NoFaceError,
    check_image,
    choose_face,
    get_backend,
    landmarks_box,
)

log = logging.getLogger(__name__)

MISSING, DETECTED, TRACKED = 0, 1, 2
"""Values of `LandmarkTrack.status`."""


@dataclass
class LandmarkTrack:
    """Landmarks of one face through a video.

    ``points``: float32 ``[T, 68, 2]`` (x, y) pixels of the frames; frames without a face hold the nearest
    good frame's points (earlier if any, else later). ``status``: int8 ``[T]``, `DETECTED` (landmarks in a
    detector box), `TRACKED` (seeded by the previous frame) or `MISSING`. ``boxes``: the seed box per frame
    (None when missing).
    """

    points: np.ndarray
    status: np.ndarray
    boxes: list[FaceBox | None]
    source: str = "<frames>"

    @property
    def num_frames(self) -> int:
        return int(self.points.shape[0])

    @property
    def missing(self) -> np.ndarray:
        return self.status == MISSING

    @property
    def detected(self) -> np.ndarray:
        return self.status == DETECTED

    @property
    def tracked(self) -> np.ndarray:
        return self.status == TRACKED

    def summary(self) -> dict[str, int]:
        return {"frames": self.num_frames, "detected": int(self.detected.sum()),
                "tracked": int(self.tracked.sum()), "missing": int(self.missing.sum())}


def _source_name(frames: object, source: str | None) -> str:
    if source is not None:
        return source
    path = getattr(frames, "path", None)
    return str(path) if path is not None else "<frames>"


def detect_landmarks(image: np.ndarray, backend: LandmarkBackend | None = None, source: str = "<image>") -> np.ndarray:
    """Landmarks float32 ``[68, 2]`` of the largest, most central face in a uint8 RGB image.

    Raises `NoFaceError` naming ``source`` when there is no face.
    """
    backend = backend if backend is not None else _default_backend()
    image = check_image(image, source)
    boxes = backend.detect_faces(image)
    if not boxes:
        raise NoFaceError(f"no face found in {source} ({image.shape[1]}x{image.shape[0]}); use a picture with a "
                          "visible, roughly frontal face of at least ~80 px")
    box = choose_face(boxes, (image.shape[1], image.shape[0]))
    if len(boxes) > 1:
        log.info("%s: %d faces found; using the largest, most central one at %s", source, len(boxes),
                 _box_text(box))
    return backend.landmarks(image, box)


_BACKEND: LandmarkBackend | None = None


def _default_backend() -> LandmarkBackend:
    global _BACKEND
    if _BACKEND is None:
        _BACKEND = get_backend("dlib")
    return _BACKEND


def _box_text(box: FaceBox) -> str:
    return f"({box.left:.0f}, {box.top:.0f})-({box.right:.0f}, {box.bottom:.0f})"


class _BoxModel:
    """Turns landmarks into the detector-like box the landmark step was trained with.

    At each detection it records the detector box's centre offset from the landmarks' box centre (in
    landmark extents) and the detector box's side. Between detections the seed box is centred on the
    landmarks (plus that offset) but keeps the detector's side: letting the size follow the landmarks
    feeds errors back (a mis-fit on a turned head grows the box, which grows the next fit) and drifts.
    """

    def __init__(self) -> None:
        self.offset = np.array([0.0, 0.0])
        self.side = 0.0

    def update(self, detector_box: FaceBox, points: np.ndarray) -> None:
        tight = landmarks_box(points)
        extent = max(tight.width, tight.height, 1.0)
        dcx, dcy = detector_box.center
        tcx, tcy = tight.center
        self.offset = np.array([(dcx - tcx) / extent, (dcy - tcy) / extent])
        self.side = max(detector_box.width, detector_box.height)

    def box(self, points: np.ndarray) -> FaceBox:
        tight = landmarks_box(points)
        extent = max(tight.width, tight.height, 1.0)
        cx, cy = np.array(tight.center) + self.offset * extent
        half = self.side / 2.0
        return FaceBox(cx - half, cy - half, cx + half, cy + half)


class FaceTracker:
    """Frame-by-frame landmark tracking (what `track_video` runs), for streaming use such as driving videos.

    ``tracker(frame) -> (points [68, 2] float32 or None, status, seed box or None)``; call it on consecutive
    frames. Parameters as in `track_video`.
    """

    def __init__(self, backend: LandmarkBackend | None = None, detect_every: int = 25, verify_every: int = 3,
                 min_overlap: float = 0.5, source: str = "<frames>", work_side: int | None = None) -> None:
        if detect_every < 1 or verify_every < 1:
            raise ValueError(f"detect_every and verify_every must be >= 1, got {detect_every}, {verify_every}")
        if work_side is not None and work_side < 64:
            raise ValueError(f"work_side must be None (full resolution) or >= 64 pixels, got {work_side}")
        self.work_side = work_side
        """Frames whose longer side exceeds this are tracked downscaled to it (INTER_AREA); landmarks and boxes are
        returned in the frame's own pixels. None: full resolution."""
        self.backend = backend if backend is not None else _default_backend()
        self.detect_every = detect_every
        self.verify_every = verify_every
        self.min_overlap = min_overlap
        self.source = source
        self.index = 0
        self._box_model = _BoxModel()
        self._previous: np.ndarray | None = None  # last frame's landmarks, None after a miss
        self._previous_box: FaceBox | None = None  # the face being followed (consistency across re-detections)
        self._since_detection = 0
        self._choices_logged = 0

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray | None, int, FaceBox | None]:
        frame = check_image(frame, f"{self.source} frame {self.index}")
        height, width = frame.shape[:2]
        if self.work_side is None or max(height, width) <= self.work_side:
            return self._track(frame)
        scale = self.work_side / max(height, width)
        small = cv2.resize(frame, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
        points, state, seed = self._track(small)
        if points is not None:
            points = (points / scale).astype(np.float32)
        if seed is not None:
            seed = FaceBox(seed.left / scale, seed.top / scale, seed.right / scale, seed.bottom / scale, seed.score)
        return points, state, seed

    def _track(self, frame: np.ndarray) -> tuple[np.ndarray | None, int, FaceBox | None]:
        backend, box_model, name, index = self.backend, self._box_model, self.source, self.index
        result: np.ndarray | None = None
        seed: FaceBox | None = None
        state = MISSING
        if self._previous is not None and self._since_detection < self.detect_every:
            seed = box_model.box(self._previous)
            local = _detect_near(backend, frame, seed) if self._since_detection % self.verify_every == 0 else None
            if local is not None:  # a detector box near the track: fit there, like a full detection would
                result, seed, state = backend.landmarks(frame, local), local, TRACKED
                box_model.update(local, result)
            else:  # seed from the previous landmarks, refined once on the new ones
                candidate = backend.landmarks(frame, seed)
                refined = box_model.box(candidate)
                candidate = backend.landmarks(frame, refined)
                after = box_model.box(candidate)
                if refined.iou(after) >= self.min_overlap and seed.iou(after) >= self.min_overlap * 0.5:
                    result, seed, state = candidate, refined, TRACKED
                else:
                    log.debug("%s frame %d: tracking lost (overlap %.2f); re-detecting", name, index,
                              refined.iou(after))
        if result is None:
            faces = backend.detect_faces(frame)
            self._since_detection = 0
            if faces:
                previous_box = self._previous_box
                seed = choose_face(faces, (frame.shape[1], frame.shape[0]), previous_box)
                if len(faces) > 1 and self._choices_logged < 5:
                    self._choices_logged += 1
                    log.info("%s frame %d: %d faces; following the %s one at %s", name, index, len(faces),
                             "tracked" if previous_box is not None and previous_box.iou(seed) > 0.2
                             else "largest, most central", _box_text(seed))
                result = backend.landmarks(frame, seed)
                box_model.update(seed, result)
                state = DETECTED
        self._since_detection += 1
        self._previous = result
        if result is not None:
            self._previous_box = landmarks_box(result)
        self.index += 1
        return result, state, (seed if result is not None else None)


def track_video(frames: Iterable[np.ndarray], backend: LandmarkBackend | None = None, detect_every: int = 25,
                min_overlap: float = 0.5, verify_every: int = 3,
                source: str | None = None, work_side: int | None = None) -> LandmarkTrack:
    """Landmarks of one face through a video (see the module docstring).

    ``frames``: uint8 RGB frames (a `talkinghead.video.VideoReader` streams them; memory stays at one frame).
    ``detect_every``: re-detect at least this often (1 = detect on every frame, the slow reference path).
    ``verify_every``: look for the face near the track every this many frames (see the module docstring).
    ``min_overlap``: IoU between a frame's seed box and its new landmarks' box below which tracking is
    considered lost and the frame is re-detected. ``work_side``: track frames downscaled to this longer side
    (`FaceTracker`). ``source`` names the video in messages (defaults to
    ``frames.path`` when there is one).
    """
    name = _source_name(frames, source)
    tracker = FaceTracker(backend, detect_every=detect_every, verify_every=verify_every, min_overlap=min_overlap,
                          source=name, work_side=work_side)
    points: list[np.ndarray | None] = []
    status: list[int] = []
    boxes: list[FaceBox | None] = []
    for frame in frames:
        result, state, seed = tracker(frame)
        points.append(result)
        status.append(state)
        boxes.append(seed)

    if not points:
        raise NoFaceError(f"{name} has no frames")
    found = [i for i, p in enumerate(points) if p is not None]
    if not found:
        raise NoFaceError(f"no face found in any of the {len(points)} frames of {name}; "
                          "check that the video shows a face (frontal, at least ~80 px)")
    missing = len(points) - len(found)
    if missing:
        first_missing = next(i for i, p in enumerate(points) if p is None)
        log.warning("%s: no face in %d of %d frames (first: frame %d); holding the nearest good landmarks", name,
                    missing, len(points), first_missing)
    filled = _hold_nearest(points, found)
    track = LandmarkTrack(filled, np.array(status, dtype=np.int8), boxes, name)
    log.debug("%s: %s", name, track.summary())
    return track


def _detect_near(backend: LandmarkBackend, frame: np.ndarray, seed: FaceBox,
                 face_pixels: float = 100.0) -> FaceBox | None:
    """Detect the face in a window twice the seed box's size, downscaled so the face is ~``face_pixels``
    wide (a few ms whatever the frame size). Returns the detection overlapping the seed most, or None."""
    height, width = frame.shape[:2]
    cx, cy = seed.center
    half = seed.width
    x0, y0 = max(int(cx - half), 0), max(int(cy - half), 0)
    x1, y1 = min(int(cx + half), width), min(int(cy + half), height)
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    window = frame[y0:y1, x0:x1]
    factor = min(1.0, face_pixels / max(seed.width, 1.0))
    if factor < 1.0:
        window = cv2.resize(window, (max(1, round((x1 - x0) * factor)), max(1, round((y1 - y0) * factor))),
                            interpolation=cv2.INTER_AREA)
    faces = backend.detect_faces(np.ascontiguousarray(window))
    if not faces:
        return None
    faces = [FaceBox(f.left / factor + x0, f.top / factor + y0, f.right / factor + x0, f.bottom / factor + y0,
                     f.score) for f in faces]
    best = max(faces, key=seed.iou)
    return best if seed.iou(best) > 0.3 else None


def _hold_nearest(points: list[np.ndarray | None], found: list[int]) -> np.ndarray:
    """Fill missing frames with the previous good frame's points (the first good one for leading frames)."""
    out = np.empty((len(points), 68, 2), dtype=np.float32)
    last = points[found[0]]
    for i, p in enumerate(points):
        if p is not None:
            last = p
        out[i] = last
    return out
