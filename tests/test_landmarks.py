"""Landmark image, crop policy, One-Euro smoothing, tracking logic and backend errors (no shared data needed)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from talkinghead.landmarks import (
    DETECTED,
    MISSING,
    TRACKED,
    CropBox,
    CropTransform,
    FaceBox,
    NoFaceError,
    OneEuroFilter,
    crop_box,
    crop_boxes,
    crop_image,
    detect_landmarks,
    get_backend,
    landmark_image,
    smooth_track,
    track_video,
)
from talkinghead.landmarks.backends import BackendUnavailable, choose_face, landmarks_box
from talkinghead.landmarks.drawing import PARTS


def _face(center: tuple[float, float] = (128.0, 128.0), radius: float = 60.0) -> np.ndarray:
    """A plausible 68-point face [68, 2]: jaw arc, brows, nose, eyes and lips in iBUG order."""
    cx, cy = center
    r = radius
    points = np.zeros((68, 2))
    angles = np.linspace(np.pi, 0, 17)  # jaw: left ear -> chin -> right ear
    points[0:17] = np.stack([cx - r * np.cos(angles), cy + r * 0.2 + r * 0.8 * np.sin(angles)], 1)
    points[17:22] = np.stack([np.linspace(cx - 0.8 * r, cx - 0.15 * r, 5), np.full(5, cy - 0.5 * r)], 1)
    points[22:27] = np.stack([np.linspace(cx + 0.15 * r, cx + 0.8 * r, 5), np.full(5, cy - 0.5 * r)], 1)
    points[27:31] = np.stack([np.full(4, cx), np.linspace(cy - 0.35 * r, cy + 0.1 * r, 4)], 1)
    points[31:36] = np.stack([np.linspace(cx - 0.2 * r, cx + 0.2 * r, 5), np.full(5, cy + 0.2 * r)], 1)
    eye = np.array([[-1, 0], [-0.5, -0.3], [0.5, -0.3], [1, 0], [0.5, 0.3], [-0.5, 0.3]]) * [0.15 * r, 0.15 * r]
    points[36:42] = eye + [cx - 0.45 * r, cy - 0.3 * r]
    points[42:48] = eye + [cx + 0.45 * r, cy - 0.3 * r]
    outer = np.stack([np.cos(np.linspace(np.pi, -np.pi, 13)[:12]), np.sin(np.linspace(np.pi, -np.pi, 13)[:12])], 1)
    points[48:60] = outer * [0.4 * r, 0.15 * r] + [cx, cy + 0.5 * r]
    inner = np.stack([np.cos(np.linspace(np.pi, -np.pi, 9)[:8]), np.sin(np.linspace(np.pi, -np.pi, 9)[:8])], 1)
    points[60:68] = inner * [0.3 * r, 0.05 * r] + [cx, cy + 0.5 * r]
    return points.astype(np.float32)


# -- landmark image -------------------------------------------------------------------------------------------
def test_landmark_image_colours_on_black() -> None:
    points = _face()
    image = landmark_image(points, 256)
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    assert (image[0:10, 0:10] == 0).all()  # black background
    expected = {(255, 255, 255): 8, (255, 0, 0): 19, (0, 255, 0): 24, (0, 0, 255): 28, (255, 0, 255): 37,
                (0, 255, 255): 43, (255, 255, 0): 54}
    for colour, index in expected.items():
        x, y = np.rint(points[index]).astype(int)
        assert tuple(image[y, x]) == colour, f"point {index} should be {colour}, is {tuple(image[y, x])}"


def test_landmark_image_closes_eyes_and_lips_not_jaw() -> None:
    points = _face()
    image = landmark_image(points, 256)
    for first, last, colour, closed in PARTS:
        midpoint = np.rint((points[first] + points[last]) / 2).astype(int)
        pixel = tuple(image[midpoint[1], midpoint[0]])
        if closed:
            assert pixel == colour, f"part {first}-{last} should be closed"
    # The jaw is open: nothing drawn halfway between its two ends (the top of the head).
    x, y = np.rint((points[0] + points[16]) / 2).astype(int)
    assert tuple(image[y, x]) != (255, 255, 255)


def test_landmark_image_is_anti_aliased_and_line_width_scales() -> None:
    image = landmark_image(_face(), 256)
    values = np.unique(image[..., 0])
    assert len(values) > 10  # intermediate (anti-aliased) levels, not only 0/255

    def jaw_thickness(img: np.ndarray, scale: float) -> int:
        # Vertical run of bright pixels where the jaw crosses the middle column (the chin, y = 188 at 256).
        col = img[int(170 * scale):int(205 * scale), int(128 * scale), 0]
        return int((col > 127).sum())

    t256 = jaw_thickness(image, 1.0)
    t512 = jaw_thickness(landmark_image(_face((256.0, 256.0), 120.0), 512), 2.0)
    t128 = jaw_thickness(landmark_image(_face((64.0, 64.0), 30.0), 128), 0.5)
    assert 1 <= t128 <= 2 and 2 <= t256 <= 3 and 4 <= t512 <= 6 and t128 < t256 < t512, (t128, t256, t512)
    thick = landmark_image(_face(), 256, line_width=6)
    assert jaw_thickness(thick, 1.0) >= 5


def test_landmark_image_rejects_bad_points() -> None:
    with pytest.raises(ValueError, match="68"):
        landmark_image(np.zeros((5, 2)), 64)
    bad = _face()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        landmark_image(bad, 64)


# -- crop -----------------------------------------------------------------------------------------------------
def test_crop_box_is_square_contains_landmarks_with_margin() -> None:
    points = _face((300.0, 200.0), 50.0)
    box = crop_box(points, scale=2.0, lift=0.15)
    low, high = points.min(0), points.max(0)
    assert box.size == pytest.approx(2.0 * float(max(high - low)))
    assert box.left < low[0] and box.top < low[1]
    assert box.left + box.size > high[0] and box.top + box.size > high[1]
    # More room above the brows (hair) than the landmarks' centre alone would give.
    assert low[1] - box.top > (box.top + box.size) - high[1]


def test_crop_maps_landmarks_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (400, 500, 3), dtype=np.uint8)
    points = _face((250.0, 200.0), 60.0)
    crop, transform = crop_image(image, crop_box(points), 128)
    assert crop.shape == (128, 128, 3)
    inside = transform.to_crop(points)
    assert (inside >= 0).all() and (inside < 128).all()
    np.testing.assert_allclose(transform.from_crop(inside), points, atol=1e-3)
    assert CropTransform.from_dict(transform.to_dict()) == transform
    # The mapping matches the pixels: a crop at the box's own size is an exact cut.
    box = CropBox(100.0, 50.0, 64.0)
    cut, exact = crop_image(image, box, 64)
    np.testing.assert_array_equal(cut, image[50:114, 100:164])
    np.testing.assert_allclose(exact.to_crop(np.array([[110.0, 60.0]])), [[10.0, 10.0]])


def test_crop_pads_at_borders_instead_of_squashing() -> None:
    image = np.full((100, 100, 3), 200, dtype=np.uint8)
    box = CropBox(-50.0, -20.0, 100.0)  # hangs off the left and top
    crop, transform = crop_image(image, box, 100)
    assert crop.shape == (100, 100, 3)
    assert (crop[:, :50] == 0).all() and (crop[:20] == 0).all()  # padding, black
    assert (crop[20:, 50:] == 200).all()  # the image, unscaled
    np.testing.assert_allclose(transform.to_crop(np.array([[0.0, 0.0]])), [[50.0, 20.0]])
    edge, _ = crop_image(image, box, 100, pad_mode="edge")
    assert (edge == 200).all()


def test_crop_boxes_smooth_jitter_over_time() -> None:
    rng = np.random.default_rng(1)
    track = np.stack([_face() + rng.normal(0, 2.0, (1, 2)) for _ in range(50)]).astype(np.float32)
    raw = np.array([crop_box(p).center for p in track])
    smooth = np.array([b.center for b in crop_boxes(track, fps=25.0)])
    assert np.diff(smooth, axis=0).std() < 0.3 * np.diff(raw, axis=0).std()
    assert len(crop_boxes(track, fps=25.0, smoothing_seconds=0)) == 50


# -- smoothing ------------------------------------------------------------------------------------------------
def test_one_euro_reduces_jitter_and_follows_a_step() -> None:
    rng = np.random.default_rng(2)
    noisy = 10.0 + rng.normal(0, 1.0, 200)
    filt = OneEuroFilter(fps=30, min_cutoff=1.0, beta=0.0)
    out = np.array([filt(np.array(v)) for v in noisy])
    assert out[50:].std() < 0.4 * noisy[50:].std()
    assert abs(out[50:].mean() - 10.0) < 0.3

    step = np.r_[np.zeros(30), np.full(60, 100.0)]
    filt = OneEuroFilter(fps=30, min_cutoff=1.0, beta=0.5)
    out = np.array([float(filt(np.array(v))) for v in step])
    assert out[45] > 95.0  # within half a second of the step
    assert abs(out[-1] - 100.0) < 0.5


def test_smooth_track_shapes_and_scale_invariance() -> None:
    rng = np.random.default_rng(3)
    track = np.stack([_face() + rng.normal(0, 1.0, (68, 2)) for _ in range(40)]).astype(np.float32)
    out = smooth_track(track, fps=25)
    assert out.shape == track.shape and out.dtype == np.float32
    big = smooth_track(track * 4, fps=25)
    np.testing.assert_allclose(big, out * 4, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError):
        smooth_track(track[0], fps=25)


# -- backends, face choice, tracking logic (with a fake backend) ---------------------------------------------
def test_get_backend_errors() -> None:
    with pytest.raises(ValueError, match="unknown landmark backend"):
        get_backend("nope")
    for name, extra in (("face-alignment", "face-alignment"), ("mediapipe", "mediapipe")):
        try:
            get_backend(name)
        except BackendUnavailable as error:
            assert f"talkinghead[{extra}]" in str(error)


def test_choose_face_prefers_large_central_then_the_tracked_one() -> None:
    small_center = FaceBox(90, 90, 110, 110)
    large_corner = FaceBox(0, 0, 60, 60)
    medium_center = FaceBox(80, 80, 130, 130)
    assert choose_face([small_center, large_corner, medium_center], (200, 200)) == medium_center
    assert choose_face([small_center, medium_center], (200, 200), previous=FaceBox(88, 88, 112, 112)) == small_center


class _FakeBackend:
    """Faces at known places: ``faces[i]`` are the boxes of frame i; landmarks are `_face` fitted to the box."""

    name = "fake"

    def __init__(self, faces: list[list[FaceBox]]) -> None:
        self.faces = faces
        self.detections = 0

    def _index(self, image: np.ndarray) -> int:
        return int(image[0, 0, 0])

    def detect_faces(self, image: np.ndarray) -> list[FaceBox]:
        self.detections += 1
        if image.shape[0] != 200:  # a local window: report nothing, so the landmark seed is used
            return []
        return self.faces[self._index(image)]

    def landmarks(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        # The face nearest the box (the true face of this frame), like a shape predictor snapping to it.
        faces = self.faces[self._index(image)] or [box]
        true = min(faces, key=lambda f: np.hypot(f.center[0] - box.center[0], f.center[1] - box.center[1]))
        return _face(true.center, true.width / 2)


def _frames(count: int) -> list[np.ndarray]:
    frames = []
    for index in range(count):
        frame = np.zeros((200, 200, 3), dtype=np.uint8)
        frame[0, 0, 0] = index
        frames.append(frame)
    return frames


def test_track_video_detects_rarely_and_marks_frames() -> None:
    faces = [[FaceBox(60 + i, 60, 140 + i, 140)] for i in range(30)]
    faces[12] = []  # a frame without a face...
    backend = _FakeBackend(faces)
    track = track_video(_frames(30), backend, detect_every=10, source="clip.mp4")
    assert track.points.shape == (30, 68, 2)
    assert track.status[0] == DETECTED
    assert (track.status == TRACKED).sum() >= 20
    assert backend.detections < 30
    # ...is still tracked (the fake predictor snaps to the nearest face), the face centre follows the motion:
    centers = (track.points.min(1) + track.points.max(1)) / 2
    np.testing.assert_allclose(centers[:, 0], 100 + np.arange(30), atol=1.0)


def test_track_video_missing_frames_held_and_no_face_errors(caplog: pytest.LogCaptureFixture) -> None:
    faces = [[FaceBox(60, 60, 140, 140)] if i >= 3 else [] for i in range(8)]
    track = track_video(_frames(8), _FakeBackend(faces), detect_every=2, source="clip.mp4")
    assert (track.status[:3] == MISSING).all() and not track.missing[3:].any()
    np.testing.assert_array_equal(track.points[0], track.points[3])  # leading frames hold the first good one
    with pytest.raises(NoFaceError, match=r"clip\.mp4"):
        track_video(_frames(4), _FakeBackend([[] for _ in range(4)]), source="clip.mp4")
    two = [[FaceBox(10, 10, 50, 50), FaceBox(60, 60, 140, 140)] for _ in range(4)]
    with caplog.at_level(logging.INFO, logger="talkinghead.landmarks.tracking"):
        track = track_video(_frames(4), _FakeBackend(two), detect_every=1, source="two.mp4")
    assert "2 faces" in caplog.text and "two.mp4" in caplog.text
    assert landmarks_box(track.points[0]).width > 60  # the large, central face


def test_detect_landmarks_no_face_names_the_file() -> None:
    with pytest.raises(NoFaceError, match=r"wall\.png"):
        detect_landmarks(np.full((120, 160, 3), 90, dtype=np.uint8), _FakeBackend([[]]), source="wall.png")


def test_dlib_backend_finds_no_face_in_a_faceless_image() -> None:
    backend = get_backend("dlib")
    rng = np.random.default_rng(4)
    noise = (rng.random((240, 320, 1)) * 255).astype(np.uint8).repeat(3, axis=2)
    assert backend.detect_faces(noise) == []
    with pytest.raises(NoFaceError, match="noise.jpg"):
        detect_landmarks(noise, backend, source="noise.jpg")


def test_face_tracker_streams_the_same_as_track_video() -> None:
    from talkinghead.landmarks import FaceTracker

    faces = [[FaceBox(60 + i, 60, 140 + i, 140)] for i in range(12)]
    track = track_video(_frames(12), _FakeBackend(faces), detect_every=5)
    tracker = FaceTracker(_FakeBackend(faces), detect_every=5)
    streamed = [tracker(frame) for frame in _frames(12)]
    np.testing.assert_array_equal(np.stack([p for p, _, _ in streamed]), track.points)
    assert [s for _, s, _ in streamed] == list(track.status)
