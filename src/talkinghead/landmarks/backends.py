"""The landmark-backend interface, face boxes, and `get_backend(name)`.

A backend does two things on a uint8 RGB ``[H, W, 3]`` image: find face boxes, and put the 68 iBUG points
(float32 ``[68, 2]``, (x, y) pixels) in a given box. Tracking (`tracking.py`) calls the detector rarely and
seeds the landmark step with the box of the previous frame's landmarks, so any backend gets tracking for free.

Backends: ``dlib`` (default, fully offline), ``face-alignment`` (the paper's detector; downloads its weights on
first use: online only), ``mediapipe`` (0.10.21 ships its models). The optional ones are imported lazily and
raise `BackendUnavailable` naming the pip extra when the package is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

NUM_LANDMARKS = 68


class BackendUnavailable(ImportError):
    """An optional landmark backend's package is not installed; the message says what to install."""


class NoFaceError(RuntimeError):
    """No face was found. The message names the file (and frame) and what to do."""


@dataclass(frozen=True)
class FaceBox:
    """A face box in pixel coordinates of its image (left/top inclusive, right/bottom exclusive)."""

    left: float
    top: float
    right: float
    bottom: float
    score: float = 0.0
    """Detector confidence when the backend gives one (dlib HOG: SVM score; 0 when unknown)."""

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return (self.left + self.right) / 2.0, (self.top + self.bottom) / 2.0

    def scaled(self, factor: float) -> FaceBox:
        """The box in an image resized by ``factor``."""
        return FaceBox(self.left * factor, self.top * factor, self.right * factor, self.bottom * factor, self.score)

    def iou(self, other: FaceBox) -> float:
        """Intersection over union with another box (0 when disjoint)."""
        width = min(self.right, other.right) - max(self.left, other.left)
        height = min(self.bottom, other.bottom) - max(self.top, other.top)
        if width <= 0 or height <= 0:
            return 0.0
        inter = width * height
        return float(inter / (self.area + other.area - inter))


@runtime_checkable
class LandmarkBackend(Protocol):
    """What tracking and the crop policy need from a landmark detector."""

    name: str

    def detect_faces(self, image: np.ndarray) -> list[FaceBox]:
        """Face boxes in a uint8 RGB ``[H, W, 3]`` image (any order; empty when there is none)."""
        ...

    def landmarks(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        """The 68 iBUG points of the face in ``box``: float32 ``[68, 2]`` (x, y) pixels."""
        ...


def landmarks_box(points: np.ndarray) -> FaceBox:
    """The tight bounding box of a set of landmarks."""
    points = np.asarray(points)
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return FaceBox(float(x0), float(y0), float(x1), float(y1))


def choose_face(boxes: list[FaceBox], image_size: tuple[int, int], previous: FaceBox | None = None) -> FaceBox:
    """The face to keep among several: the one overlapping ``previous`` most (consistency over time), else the
    largest, most central one (area weighted down by its centre's distance from the image centre)."""
    if not boxes:
        raise ValueError("choose_face needs at least one box")
    if previous is not None:
        best = max(boxes, key=previous.iou)
        if previous.iou(best) > 0.2:
            return best
    width, height = image_size
    half_diagonal = 0.5 * float(np.hypot(width, height))

    def score(box: FaceBox) -> float:
        cx, cy = box.center
        distance = float(np.hypot(cx - width / 2.0, cy - height / 2.0)) / half_diagonal
        return box.area * (1.0 - 0.5 * min(distance, 1.0))

    return max(boxes, key=score)


BACKENDS = ("dlib", "face-alignment", "mediapipe")


def get_backend(name: str = "dlib", **options: Any) -> LandmarkBackend:
    """A landmark backend by name: ``dlib`` (default, offline), ``face-alignment`` or ``mediapipe``.

    ``options`` go to the backend's constructor (e.g. ``model_path=`` for dlib, ``device=`` for
    face-alignment).
    """
    if name == "dlib":
        from talkinghead.landmarks.dlib_backend import DlibBackend

        return DlibBackend(**options)
    if name in ("face-alignment", "face_alignment"):
        from talkinghead.landmarks.optional_backends import FaceAlignmentBackend

        return FaceAlignmentBackend(**options)
    if name == "mediapipe":
        from talkinghead.landmarks.optional_backends import MediaPipeBackend

        return MediaPipeBackend(**options)
    raise ValueError(f"unknown landmark backend {name!r}; choose one of {list(BACKENDS)}")


def check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Validate a uint8 RGB ``[H, W, 3]`` image (the pipeline's convention)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{what} must be uint8 RGB [H, W, 3], got {image.dtype} {image.shape}")
    return image
