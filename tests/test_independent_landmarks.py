"""The landmark detector that is not dlib (optional_backends.independent_detector), for AKD that dlib does not both
drive and measure (issue 24), and the yaw read off MediaPipe's 3D mesh (optional_backends.mesh_yaw). Neither
optional package is needed: stand-in backends and a hand-built mesh exercise the logic."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from _rotation import rotation
from talkinghead.landmarks.backends import BackendUnavailable, FaceBox
from talkinghead.landmarks.optional_backends import (
    INDEPENDENT_BACKENDS,
    MESH_LEFT_RIGHT_PAIRS,
    MESH_MIDLINE,
    independent_detector,
    mesh_yaw,
)


class _StandIn:
    """A backend that finds the boxes it is given and puts 68 points on the box's corner (its left, top)."""

    name = "stand-in"

    def __init__(self, boxes: list[FaceBox], fit: bool = True) -> None:
        self.boxes, self.fit = boxes, fit

    def detect_faces(self, image: np.ndarray) -> list[FaceBox]:
        return list(self.boxes)

    def landmarks(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        if not self.fit:
            raise RuntimeError("no landmarks in this box")
        return np.tile(np.array([[box.left, box.top]], dtype=np.float64), (68, 1))


def _missing() -> _StandIn:
    raise BackendUnavailable("pip install 'talkinghead[mediapipe]'")


def _offline() -> _StandIn:
    raise OSError("cannot download the network weights")


IMAGE = np.zeros((100, 100, 3), dtype=np.uint8)


def test_no_independent_detector_when_none_is_installed():
    assert independent_detector([("mediapipe", _missing), ("face-alignment", _missing)]) is None
    assert independent_detector([]) is None


def test_the_first_installed_backend_is_used_on_the_main_face():
    small, large = FaceBox(5, 5, 15, 15), FaceBox(30, 30, 90, 90)
    found = independent_detector([("mediapipe", _missing), ("face-alignment", lambda: _StandIn([small, large]))])
    assert found is not None
    name, detect = found
    assert name == "face-alignment"
    points = detect(IMAGE)
    assert points.shape == (68, 2) and points.dtype == np.float32
    assert np.all(points == [30, 30])  # the largest, most central face
    with pytest.raises(ValueError, match="uint8 RGB"):
        detect(np.zeros((100, 100), dtype=np.uint8))


def test_no_face_or_no_fit_gives_none():
    _, no_face = independent_detector([("stand-in", lambda: _StandIn([]))])
    _, no_fit = independent_detector([("stand-in", lambda: _StandIn([FaceBox(0, 0, 50, 50)], fit=False))])
    assert no_face(IMAGE) is None and no_fit(IMAGE) is None


def test_an_installed_backend_that_cannot_start_is_skipped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="talkinghead.landmarks.optional_backends"):
        found = independent_detector([("face-alignment", _offline), ("mediapipe", lambda: _StandIn([]))])
    assert found is not None and found[0] == "mediapipe"
    assert "face-alignment" in caplog.text and "cannot download" in caplog.text


def test_default_search_names_only_backends_other_than_dlib():
    assert [name for name, _ in INDEPENDENT_BACKENDS] == ["mediapipe", "face-alignment"]
    found = independent_detector()  # None in the default environment: neither extra is installed
    assert found is None or found[0] in ("mediapipe", "face-alignment")




def _mesh(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """A [468, 3] mesh holding only the vertices mesh_yaw reads, mirror pairs at different depths, turned by a known
    pose and shifted: x right, y down, z toward the camera."""
    head = np.zeros((468, 3))
    for (left, right), (half_width, height, depth) in zip(MESH_LEFT_RIGHT_PAIRS, [
            (45, 8, -28), (16, 10, -12), (26, 72, -8), (65, 45, -70), (68, 5, -80)], strict=True):
        head[left], head[right] = (-half_width, height, depth), (half_width, height, depth)
    head[MESH_MIDLINE[0]], head[MESH_MIDLINE[1]] = (0, -60, -10), (0, 120, -10)  # upright: no lean in depth
    return head @ rotation(yaw, pitch, roll).T + np.array([120.0, 90.0, 0.0])


@pytest.mark.parametrize(("yaw", "pitch", "roll"), [(0, 0, 0), (30, 0, 0), (-25, 12, -8), (50, -15, 15)])
def test_mesh_yaw_reads_the_pose_it_was_turned_by(yaw, pitch, roll):
    assert mesh_yaw(_mesh(yaw, pitch, roll)) == pytest.approx(yaw, abs=1e-6)


def test_mesh_yaw_refuses_a_wrong_shape():
    with pytest.raises(ValueError, match="468, 3"):
        mesh_yaw(np.zeros((468, 2)))
