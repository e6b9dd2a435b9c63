"""Synthetic talking heads: landmarks on the drawn features, determinism, identity variety, cross-identity motion."""

from __future__ import annotations

import dataclasses
import hashlib

import cv2
import numpy as np
import pytest

from talkinghead.data.synthetic import (
    MOUTH_INTERIOR,
    FramePose,
    Identity,
    Motion,
    SyntheticVideo,
    contact_sheet,
    drawing,
    frame_landmarks,
    geometry,
    identity,
    render_frame,
    render_video,
)

GREY = (128, 128, 128)
MARKER = (255, 0, 255)  # an iris colour no other part of a test identity uses


def _colour_mask(img: np.ndarray, colour: tuple[int, int, int], tol: int) -> np.ndarray:
    return np.abs(img.astype(np.int16) - np.array(colour, np.int16)).max(-1) <= tol


def _polygon_mask(points: np.ndarray, size: int, grow: int = 0) -> np.ndarray:
    """Pixels inside the polygon; grow > 0 dilates, grow < 0 erodes by that many pixels."""
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    if grow:
        kernel = np.ones((2 * abs(grow) + 1, 2 * abs(grow) + 1), np.uint8)
        mask = cv2.dilate(mask, kernel) if grow > 0 else cv2.erode(mask, kernel)
    return mask.astype(bool)


def _marked(seed: int, **changes) -> Identity:
    """An identity with a marker iris colour and grey clothes/background, so colour tests are unambiguous."""
    ident = Identity.sample(seed)
    return dataclasses.replace(ident, eye_colour=MARKER, clothing=GREY, background=(GREY, GREY), **changes)


POSES = [
    FramePose(),
    FramePose(yaw=35, pitch=8, roll=-6, gaze_x=0.6),
    FramePose(yaw=-40, pitch=-10, roll=8, smile=0.8, gaze_y=-0.5),
    FramePose(yaw=15, brow_raise=1.0, tx=0.03, ty=-0.02, scale=1.05),
]


@pytest.mark.parametrize("seed", [0, 3, 7, 11])
def test_irises_are_visible_and_inside_the_eye_polygons(seed: int) -> None:
    size = 192
    ident = _marked(seed)
    for pose in POSES:
        img, lm = render_frame(ident, pose, size)
        iris = _colour_mask(img, MARKER, 60)
        eyes = _polygon_mask(lm[36:42], size, grow=1) | _polygon_mask(lm[42:48], size, grow=1)
        assert iris.sum() >= 6, f"seed {seed} {pose}: iris not visible"
        assert not (iris & ~eyes).any(), f"seed {seed} {pose}: iris pixels outside the eye polygons"
        # each eye that is not strongly foreshortened (the far eye of a turned head) shows its own iris
        for eye in (lm[36:42], lm[42:48]):
            if np.ptp(eye[:, 0]) > 10:
                assert (iris & _polygon_mask(eye, size, grow=1)).sum() >= 4


def test_closed_eyes_show_no_iris() -> None:
    size = 192
    img, lm = render_frame(_marked(4), FramePose(blink_left=1.0, blink_right=1.0), size)
    assert _colour_mask(img, MARKER, 60).sum() == 0
    for eye in (lm[36:42], lm[42:48]):
        assert np.ptp(eye[:, 1]) < 0.25 * np.ptp(eye[:, 0]), "a closed eye is a thin slit"


@pytest.mark.parametrize("seed", [1, 5, 9])
def test_mouth_interior_only_inside_the_inner_lips(seed: int) -> None:
    size = 192
    ident = _marked(seed)
    for yaw in (-30, 0, 25):
        img, lm = render_frame(ident, FramePose(yaw=yaw, mouth_open=1.0), size)
        interior = _colour_mask(img, MOUTH_INTERIOR, 10)
        assert interior.sum() >= 15, f"seed {seed} yaw {yaw}: open mouth interior not visible"
        assert not (interior & ~_polygon_mask(lm[60:68], size, grow=1)).any()
        teeth = _colour_mask(img, identity.TEETH, 12) & _polygon_mask(lm[60:68], size)
        assert teeth.sum() >= 3, "teeth are drawn in the open mouth"
        closed, _ = render_frame(ident, FramePose(yaw=yaw, mouth_open=0.0), size)
        assert _colour_mask(closed, MOUTH_INTERIOR, 10).sum() <= 2


@pytest.mark.parametrize("seed", [2, 6, 8])
def test_jaw_outline_is_filled_with_face(seed: int) -> None:
    size = 160
    blue = (0, 0, 255)
    ident = dataclasses.replace(Identity.sample(seed), background=(blue, blue), background_style="gradient")
    for pose in POSES:
        img, lm = render_frame(ident, pose, size)
        inside = _polygon_mask(lm[0:17], size, grow=-2)
        assert inside.sum() > 500
        background_like = np.abs(img.astype(np.int16) - np.array(blue, np.int16)).max(-1) < 60
        assert not (inside & background_like).any(), f"seed {seed} {pose}: background inside the jaw outline"
        # and the face sits in the frame with room for hair and shoulders
        assert lm[:, 0].min() > 0.1 * size and lm[:, 0].max() < 0.9 * size
        assert lm[:, 1].min() > 0.2 * size and lm[:, 1].max() < 0.85 * size


def test_same_seed_same_pixels_even_after_clearing_caches() -> None:
    motion = Motion.sample(5, 6)
    frames1, lm1, yaw1 = render_video(Identity.sample(12), motion, 96)
    geometry._geometry.cache_clear()
    drawing._background.cache_clear()
    frames2, lm2, yaw2 = render_video(Identity.sample(12), Motion.sample(5, 6), 96)
    assert frames1.dtype == np.uint8 and frames1.shape == (6, 96, 96, 3)
    assert lm1.dtype == np.float32 and lm1.shape == (6, 68, 2)
    assert yaw1.dtype == np.float32 and yaw1.shape == (6,)
    np.testing.assert_array_equal(frames1, frames2)
    np.testing.assert_array_equal(lm1, lm2)
    np.testing.assert_array_equal(yaw1, yaw2)
    assert Identity.sample(12) == Identity.sample(12)
    np.testing.assert_array_equal(Motion.sample(5, 6).mouth_open, motion.mouth_open)


def test_different_seeds_give_different_people() -> None:
    people = [Identity.sample(s) for s in range(40)]
    assert len(set(people)) == 40
    assert len({p.hair_style for p in people}) >= 5
    assert len({p.beard for p in people}) >= 3
    assert len({p.glasses for p in people}) == 3
    assert len({p.background_style for p in people}) >= 3
    brightness = [sum(p.skin) for p in people]
    assert max(brightness) - min(brightness) > 250, "skin tones span light to dark"
    pose = FramePose()
    images = [render_frame(p, pose, 64)[0].astype(np.int16) for p in people[:8]]
    shapes = [frame_landmarks(p, pose, 128) for p in people[:8]]
    for i in range(8):
        for j in range(i + 1, 8):
            assert np.abs(images[i] - images[j]).mean() > 8
            assert np.abs(shapes[i] - shapes[j]).max() > 1.0, "face shapes differ"


def test_yaw_moves_the_nose_laterally() -> None:
    ident = Identity.sample(3)
    yaws = np.arange(-45, 46, 15)
    lms = [frame_landmarks(ident, FramePose(yaw=float(y)), 128) for y in yaws]
    nose_offset = np.array([lm[30, 0] - (lm[0, 0] + lm[16, 0]) / 2 for lm in lms])
    assert np.all(np.diff(nose_offset) > 0), "positive yaw turns the nose toward image right"
    assert nose_offset[0] < -8 and nose_offset[-1] > 8
    assert abs(nose_offset[len(yaws) // 2]) < 0.5, "frontal face is symmetric"
    # the protruding nose tip moves more than the eyes, which move more than the ear-level jaw points
    tip = np.ptp([lm[30, 0] for lm in lms])
    eyes = np.ptp([lm[36:48, 0].mean() for lm in lms])
    assert tip > 1.3 * eyes
    # pitch up moves the nose tip up relative to the eyes
    up = frame_landmarks(ident, FramePose(pitch=15), 128)
    down = frame_landmarks(ident, FramePose(pitch=-15), 128)
    assert (up[30, 1] - up[36:48, 1].mean()) < (down[30, 1] - down[36:48, 1].mean()) - 2


def test_expressions_move_the_right_landmarks() -> None:
    ident = Identity.sample(0)
    neutral = frame_landmarks(ident, FramePose(), 128)
    open_ = frame_landmarks(ident, FramePose(mouth_open=1), 128)
    smile = frame_landmarks(ident, FramePose(smile=1), 128)
    raised = frame_landmarks(ident, FramePose(brow_raise=1), 128)
    assert open_[66, 1] - open_[62, 1] > 5 + (neutral[66, 1] - neutral[62, 1])
    assert open_[8, 1] > neutral[8, 1] + 4, "the chin drops with the jaw"
    assert smile[54, 0] - smile[48, 0] > neutral[54, 0] - neutral[48, 0] + 1, "a smile widens the mouth"
    assert smile[48, 1] < neutral[48, 1] and smile[54, 1] < neutral[54, 1], "corners go up"
    assert np.all(raised[17:27, 1] < neutral[17:27, 1] - 1)
    np.testing.assert_allclose(raised[27:36], neutral[27:36])


def test_person_a_with_person_b_motion() -> None:
    a, b = Identity.sample(21), Identity.sample(22)
    motion_b = Motion.sample(99, 12)
    frames_ab, lm_ab, yaw_ab = render_video(a, motion_b, 128)
    frames_b, lm_b, yaw_b = render_video(b, motion_b, 128)
    frames_a, lm_a, _ = render_video(a, Motion.sample(98, 12), 128)
    # landmarks are exactly B's motion on A's face shape
    for t in range(12):
        np.testing.assert_array_equal(lm_ab[t], frame_landmarks(a, motion_b.frame(t), 128))
    np.testing.assert_array_equal(yaw_ab, yaw_b)
    np.testing.assert_array_equal(yaw_ab, motion_b.yaw.astype(np.float32))
    # ... which are not B's landmarks (different face shape) but move the same way
    assert np.abs(lm_ab - lm_b).max() > 1.0
    gap_ab = lm_ab[:, 66, 1] - lm_ab[:, 62, 1]
    gap_b = lm_b[:, 66, 1] - lm_b[:, 62, 1]
    assert np.corrcoef(gap_ab, gap_b)[0, 1] > 0.95
    nose_ab = lm_ab[:, 30, 0] - lm_ab[:, [0, 16], 0].mean(1)
    nose_b = lm_b[:, 30, 0] - lm_b[:, [0, 16], 0].mean(1)
    assert np.sign(nose_ab).tolist() == np.sign(nose_b).tolist()
    # appearance is A's: face colour and background match A's own video, not B's
    for t in range(0, 12, 4):
        face = _polygon_mask(lm_ab[t, 0:17], 128, grow=-3)
        colour_ab = np.median(frames_ab[t][face], axis=0)
        colour_a = np.median(frames_a[t][_polygon_mask(lm_a[t, 0:17], 128, grow=-3)], axis=0)
        colour_b = np.median(frames_b[t][_polygon_mask(lm_b[t, 0:17], 128, grow=-3)], axis=0)
        assert np.abs(colour_ab - colour_a).max() < np.abs(colour_ab - colour_b).max()
        np.testing.assert_array_equal(frames_ab[t, :3, :3], frames_a[t, :3, :3])  # A's background corner


def test_motion_is_smooth_varied_and_in_range() -> None:
    yaw_ranges = []
    for seed in range(30):
        m = Motion.sample(seed, 48)
        assert len(m) == 48 and m.num_frames == 48
        assert np.abs(np.diff(m.yaw)).max() < 6
        assert np.abs(m.yaw).max() <= 50 and np.abs(m.pitch).max() <= 20 and np.abs(m.roll).max() <= 12
        assert m.mouth_open.min() >= 0 and m.mouth_open.max() <= 1
        yaw_ranges.append(np.ptp(m.yaw))
    assert max(yaw_ranges) > 40, "some clips contain large head turns"
    assert np.mean([np.ptp(Motion.sample(s, 48).mouth_open) for s in range(30)]) > 0.3, "mouths move"
    blinks = sum(Motion.sample(s, 100).blink_left.max() > 0.9 for s in range(30))
    assert blinks >= 20


def test_synthetic_video_spec_and_contact_sheet() -> None:
    spec = SyntheticVideo(identity_seed=3, motion_seed=4, num_frames=5)
    frames, lm, yaw = spec.render(64)
    ref_frames, ref_lm, ref_yaw = render_video(Identity.sample(3), Motion.sample(4, 5), 64)
    np.testing.assert_array_equal(frames, ref_frames)
    np.testing.assert_array_equal(lm, ref_lm)
    sheet = contact_sheet(num_identities=2, num_frames=3, size=64)
    assert sheet.shape == (128, 192, 3) and sheet.dtype == np.uint8


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="size"):
        render_frame(Identity.sample(0), FramePose(), 16)
    with pytest.raises(IndexError, match="frame 5"):
        Motion.sample(0, 5).frame(5)
    with pytest.raises(ValueError, match="seed"):
        Identity.sample(-1)
    with pytest.raises(ValueError, match="same length"):
        Motion.from_poses([FramePose()]).__class__(**{**Motion.from_poses([FramePose()]).__dict__,
                                                      "yaw": np.zeros(3)})


def test_docs_contact_sheet_is_present_and_small() -> None:
    from pathlib import Path

    sheet = Path(__file__).resolve().parents[1] / "docs" / "images" / "synthetic_contact_sheet.png"
    assert sheet.is_file(), "regenerate with: python -m talkinghead.data.synthetic " + str(sheet)
    assert sheet.stat().st_size < 300_000
    image = cv2.imread(str(sheet))
    assert image.shape == (768, 768, 3)


def test_a_frame_is_bit_identical_to_the_one_rendered_before_the_split_into_files():
    # sha256 of this frame and its landmarks as rendered by the single-file synthetic.py (issue 14's split)
    frame, points = render_frame(Identity.sample(0), Motion.sample(seed=7, num_frames=2).frame(0), size=32)
    assert hashlib.sha256(frame.tobytes()).hexdigest() == (
        "972443e2db29ed65d418c145299762e5657b4753b9f4f8f670ebdfa14085c1dc")
    assert hashlib.sha256(points.tobytes()).hexdigest() == (
        "0031acccad27fcb0876bf698c3fca0d9c43041b3eac77bf57054240c5b11cc9e")
