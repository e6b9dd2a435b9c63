"""Procedural synthetic talking heads with exact 68-point landmarks (iBUG order), for tests and the demo.

A synthetic person (`Identity`) is a 3D head built from a seed: a 68-point landmark template shaped by the
identity's face-shape parameters, plus non-landmark geometry (cranium, hair volume, ears, neck, shoulders)
and colours. A `Motion` is a smooth random trajectory of per-frame `FramePose`s (head yaw/pitch/roll,
mouth opening, smile, blinks, brow raise, gaze, small translation and scale), independent of the identity.
Every frame rotates the identity's 3D points, projects them with a mild perspective, and draws the picture
from the same projected points that are returned as landmarks, so the landmarks land on the drawn features.

Because a motion does not depend on the identity, rendering identity A with B's motion gives the ground
truth for cross-identity reenactment: B's head pose and expression on A's face shape and appearance::

    a, b = Identity.sample(1), Identity.sample(2)
    motion_b = Motion.sample(seed=7, num_frames=32)
    frames, landmarks, yaw = render_video(a, motion_b, size=128)   # A performing B's motion
    frame, points = render_frame(a, motion_b.frame(0), size=128)   # one frame
    points_only = frame_landmarks(a, motion_b.frame(0), size=128)  # the same landmarks without drawing

Conventions: images are uint8 RGB [H, W, 3]; landmarks float32 [68, 2] (x, y) in pixels of that image;
angles in degrees. Positive yaw turns the face toward image right (the subject's left), positive pitch tilts
the face up, positive roll turns the head clockwise in the image. Everything is deterministic from seeds.

Head coordinates (units of roughly half a face width): x to image right, y down, z toward the camera;
the eyes are at y = 0, the chin near y = 1, the top of the head near y = -1.1.
"""

from __future__ import annotations

import argparse
import colorsys
import logging
import math
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "Identity",
    "FramePose",
    "Motion",
    "SyntheticVideo",
    "render_frame",
    "render_video",
    "frame_landmarks",
    "contact_sheet",
    "save_contact_sheet",
    "MIN_SIZE",
    "MAX_SIZE",
    "MOUTH_INTERIOR",
]

MIN_SIZE = 32
MAX_SIZE = 512

MOUTH_INTERIOR = (92, 22, 34)  # RGB of the open mouth's interior (tests look for it)
SCLERA = (236, 234, 228)
PUPIL = (12, 10, 10)
TEETH = (240, 238, 226)

HAIR_STYLES = ("short", "crew", "long", "bob", "bald", "bun", "curly", "fringe")
BACKGROUND_STYLES = ("gradient", "wall", "bokeh", "window")

_SHIFT = 4  # cv2 fractional bits: coordinates are drawn with 1/16 pixel precision
_ONE = 1 << _SHIFT

_PIVOT = np.array([0.0, 0.85, -0.25])  # the head turns about the top of the neck
_CRANIUM_CENTRE = np.array([0.0, -0.15, -0.08])
_FOCAL = 7.0  # head units from the camera to the head origin: mild perspective
_SCALE = 0.27  # head units -> fraction of the image size
_EYE_LEVEL = 0.42  # fraction of the image height where the eyes sit (y = 0)


# ----------------------------------------------------------------------------------------------------------------
# Identity
# ----------------------------------------------------------------------------------------------------------------

RGB = tuple[int, int, int]

_SKIN_TONES = np.array(
    [(255, 224, 198), (243, 200, 168), (228, 178, 140), (205, 148, 108), (170, 114, 78), (128, 84, 56), (88, 58, 40)],
    dtype=np.float64,
)
_HAIR_COLOURS = np.array(
    [(22, 18, 16), (48, 32, 24), (92, 60, 38), (140, 98, 58), (200, 160, 96), (232, 206, 150), (150, 58, 28),
     (150, 146, 142), (222, 220, 214), (52, 60, 130), (176, 70, 120)],
    dtype=np.float64,
)
_HAIR_WEIGHTS = np.array([6, 8, 7, 4, 3, 2, 2, 2, 1, 0.4, 0.4])
_EYE_COLOURS = np.array(
    [(70, 42, 24), (40, 26, 18), (70, 110, 160), (80, 120, 70), (120, 96, 50), (110, 120, 130)], dtype=np.float64
)


def _clip_rgb(colour: np.ndarray | tuple) -> RGB:
    c = np.clip(np.round(np.asarray(colour, dtype=np.float64)), 0, 255).astype(int)
    return int(c[0]), int(c[1]), int(c[2])


def _mix(a: RGB | np.ndarray, b: RGB | np.ndarray, t: float) -> RGB:
    return _clip_rgb((1.0 - t) * np.asarray(a, dtype=np.float64) + t * np.asarray(b, dtype=np.float64))


def _shade(c: RGB, k: float) -> RGB:
    return _clip_rgb(np.asarray(c, dtype=np.float64) * k)


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return _clip_rgb((255 * r, 255 * g, 255 * b))


@dataclass(frozen=True)
class Identity:
    """One synthetic person: face shape, appearance and background. Sample with `Identity.sample(seed)`.

    Shape parameters are multiplicative factors around 1 (head units); colours are RGB tuples.
    """

    seed: int
    # face shape
    head_width: float
    jaw_width: float
    chin_width: float
    face_length: float
    eye_spacing: float
    eye_size: float
    nose_length: float
    nose_width: float
    lip_width: float
    lip_thickness: float
    brow_thickness: float
    brow_height: float
    ear_size: float
    neck_width: float
    shoulder_width: float
    # appearance
    skin: RGB
    lips: RGB
    eye_colour: RGB
    hair_style: str
    hair_colour: RGB
    hair_volume: float
    hairline: float
    brow_colour: RGB
    beard: str  # "none", "stubble", "full", "goatee", "moustache"
    glasses: str  # "none", "round", "square"
    glasses_colour: RGB
    clothing: RGB
    neckline: str  # "crew", "v", "collar"
    blush: float
    background_style: str
    background: tuple[RGB, RGB]

    @classmethod
    def sample(cls, seed: int) -> Identity:
        """A random person, deterministic from `seed` (any non-negative int)."""
        if seed < 0:
            raise ValueError(f"Identity.sample: seed must be >= 0, got {seed}")
        rng = np.random.default_rng([int(seed), 0x1D])

        def u(lo: float, hi: float) -> float:
            return float(rng.uniform(lo, hi))

        tone = u(0, len(_SKIN_TONES) - 1)
        i = int(tone)
        j = min(i + 1, len(_SKIN_TONES) - 1)
        skin = (1 - (tone - i)) * _SKIN_TONES[i] + (tone - i) * _SKIN_TONES[j]
        skin = skin * u(0.94, 1.04) + rng.normal(0, 4, 3)
        skin_rgb = _clip_rgb(skin)
        lips = _mix(skin_rgb, (170, 60, 70), u(0.25, 0.5))
        lips = _shade(lips, 0.95)

        hair_style = str(rng.choice(HAIR_STYLES, p=np.array([5, 2, 4, 3, 1, 2, 2, 3]) / 22))
        hair = _HAIR_COLOURS[rng.choice(len(_HAIR_COLOURS), p=_HAIR_WEIGHTS / _HAIR_WEIGHTS.sum())]
        hair_rgb = _clip_rgb(hair * u(0.85, 1.15))
        brow = _mix(hair_rgb, (30, 22, 18), 0.35) if hair_style != "bald" else _shade(skin_rgb, 0.45)

        eye = _EYE_COLOURS[rng.integers(len(_EYE_COLOURS))] * u(0.85, 1.15)

        beard = "none"
        if rng.uniform() < 0.35:
            beard = str(rng.choice(["stubble", "full", "goatee", "moustache"], p=[0.35, 0.3, 0.2, 0.15]))
        glasses = str(rng.choice(["none", "round", "square"], p=[0.7, 0.15, 0.15]))
        glasses_colour = _clip_rgb(
            [(20, 20, 22), (110, 70, 40), (170, 150, 90), (60, 60, 140)][rng.integers(4)]
        )

        clothing = _hsv(u(0, 1), u(0.15, 0.8), u(0.2, 0.9))
        neckline = str(rng.choice(["crew", "v", "collar"]))

        bg_style = str(rng.choice(BACKGROUND_STYLES))
        h = u(0, 1)
        bg1 = _hsv(h, u(0.05, 0.45), u(0.35, 0.95))
        bg2 = _hsv(h + u(-0.15, 0.15), u(0.05, 0.5), u(0.2, 0.9))

        return cls(
            seed=int(seed),
            head_width=u(0.93, 1.07),
            jaw_width=u(0.82, 1.12),
            chin_width=u(0.8, 1.25),
            face_length=u(0.9, 1.1),
            eye_spacing=u(0.9, 1.1),
            eye_size=u(0.85, 1.2),
            nose_length=u(0.85, 1.2),
            nose_width=u(0.8, 1.3),
            lip_width=u(0.85, 1.15),
            lip_thickness=u(0.7, 1.4),
            brow_thickness=u(0.7, 1.5),
            brow_height=u(-0.04, 0.04),
            ear_size=u(0.85, 1.2),
            neck_width=u(0.85, 1.15),
            shoulder_width=u(0.9, 1.12),
            skin=skin_rgb,
            lips=lips,
            eye_colour=_clip_rgb(eye),
            hair_style=hair_style,
            hair_colour=hair_rgb,
            hair_volume=u(0.95, 1.1),
            hairline=u(-0.68, -0.5),
            brow_colour=brow,
            beard=beard,
            glasses=glasses,
            glasses_colour=glasses_colour,
            clothing=clothing,
            neckline=neckline,
            blush=u(0.0, 0.12),
            background_style=bg_style,
            background=(bg1, bg2),
        )


# ----------------------------------------------------------------------------------------------------------------
# Motion
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FramePose:
    """Head pose and expression of one frame. Angles in degrees; expression values mostly in [0, 1].

    mouth_open 0..1 (jaw drop), smile -0.4..1 (negative: frown), blink_right / blink_left 0 (open)..1 (closed)
    for the subject's right (iBUG 36-41) / left (42-47) eye, brow_raise -0.5..1, gaze_x / gaze_y -1..1,
    tx / ty translation as a fraction of the image size, scale around 1.
    """

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    mouth_open: float = 0.0
    smile: float = 0.0
    blink_right: float = 0.0
    blink_left: float = 0.0
    brow_raise: float = 0.0
    gaze_x: float = 0.0
    gaze_y: float = 0.0
    tx: float = 0.0
    ty: float = 0.0
    scale: float = 1.0


_POSE_FIELDS = tuple(f.name for f in fields(FramePose))


def _smooth(rng: np.random.Generator, t: np.ndarray, min_period: float, max_period: float, n: int = 3) -> np.ndarray:
    """A smooth random curve with values roughly in [-1, 1]: a sum of `n` random sinusoids."""
    out = np.zeros_like(t)
    weights = rng.uniform(0.4, 1.0, n)
    for w in weights:
        period = rng.uniform(min_period, max_period)
        out += w * np.sin(2 * math.pi * t / period + rng.uniform(0, 2 * math.pi))
    return out / weights.sum() * 1.6


@dataclass(frozen=True)
class Motion:
    """Per-frame pose trajectories (arrays of shape [T], one per `FramePose` field). Identity-independent."""

    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    mouth_open: np.ndarray
    smile: np.ndarray
    blink_right: np.ndarray
    blink_left: np.ndarray
    brow_raise: np.ndarray
    gaze_x: np.ndarray
    gaze_y: np.ndarray
    tx: np.ndarray
    ty: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        lengths = {name: np.asarray(getattr(self, name)).shape for name in _POSE_FIELDS}
        first = lengths["yaw"]
        if len(first) != 1 or any(shape != first for shape in lengths.values()):
            raise ValueError(f"Motion: every field must be a 1-D array of the same length, got shapes {lengths}")

    def __len__(self) -> int:
        return int(self.yaw.shape[0])

    @property
    def num_frames(self) -> int:
        return len(self)

    def frame(self, t: int) -> FramePose:
        """The pose of frame `t`."""
        if not 0 <= t < len(self):
            raise IndexError(f"Motion.frame: frame {t} out of range for a motion of {len(self)} frames")
        return FramePose(**{name: float(getattr(self, name)[t]) for name in _POSE_FIELDS})

    @classmethod
    def from_poses(cls, poses: list[FramePose]) -> Motion:
        """A motion from explicit per-frame poses (e.g. to script a head turn in a test)."""
        if not poses:
            raise ValueError("Motion.from_poses: need at least one FramePose")
        return cls(**{name: np.array([getattr(p, name) for p in poses], dtype=np.float64) for name in _POSE_FIELDS})

    @classmethod
    def sample(cls, seed: int, num_frames: int) -> Motion:
        """Smooth random head motion and talking, deterministic from `seed`.

        Yaw spans up to about ±50° (some clips sweep across a large range), pitch ±20°, roll ±12°; the mouth
        moves at syllable rate while "speaking"; blinks are short random events.
        """
        if num_frames < 1:
            raise ValueError(f"Motion.sample: num_frames must be >= 1, got {num_frames}")
        if seed < 0:
            raise ValueError(f"Motion.sample: seed must be >= 0, got {seed}")
        rng = np.random.default_rng([int(seed), 0x30])
        T = num_frames
        t = np.arange(T, dtype=np.float64)

        # head pose: a base pose, slow wander, and in some clips a large sweep (what makes pose changes hard)
        yaw = rng.uniform(-25, 25) + rng.uniform(4, 18) * _smooth(rng, t, 25, 90)
        if rng.uniform() < 0.45:
            start, end = rng.uniform(-45, 45, 2)
            ramp = np.clip((t - rng.uniform(0, 0.5) * T) / max(rng.uniform(0.2, 0.6) * T, 1.0), 0, 1)
            yaw = 0.4 * yaw + start + (end - start) * ramp * ramp * (3 - 2 * ramp)
        yaw = np.clip(yaw, -50, 50)
        pitch = np.clip(rng.uniform(-8, 8) + rng.uniform(3, 10) * _smooth(rng, t, 20, 70), -20, 20)
        roll = np.clip(rng.uniform(-6, 6) + rng.uniform(2, 7) * _smooth(rng, t, 20, 80), -12, 12)

        # talking: syllable-rate opening under a slower speaking envelope
        speaking = np.clip(0.6 + 0.8 * _smooth(rng, t, 30, 80), 0, 1) if rng.uniform() < 0.9 else np.zeros(T)
        syllables = np.clip(0.5 + 0.7 * _smooth(rng, t, 4, 11, n=4), 0, 1)
        mouth_open = np.clip(speaking * syllables * rng.uniform(0.6, 1.0), 0, 1)
        smile = np.clip(rng.uniform(-0.2, 0.6) + 0.5 * _smooth(rng, t, 25, 80), -0.4, 1.0)
        brow_raise = np.clip(rng.uniform(-0.2, 0.3) + 0.6 * _smooth(rng, t, 12, 50), -0.5, 1.0)

        # blinks: ~ one every 40-100 frames, 4-7 frames long, both eyes (rarely a wink)
        blink_right = np.zeros(T)
        blink_left = np.zeros(T)
        start = rng.uniform(-30, 40)
        while start < T:
            length = rng.uniform(4, 7)
            profile = np.clip(1 - np.abs(t - start - length / 2) / (length / 2), 0, 1) ** 0.6
            wink = rng.uniform()
            if wink > 0.07:
                blink_right = np.maximum(blink_right, profile)
            if wink < 0.93:
                blink_left = np.maximum(blink_left, profile)
            start += rng.uniform(30, 100)

        gaze_x = np.clip(0.5 * _smooth(rng, t, 15, 60) - yaw / 120, -1, 1)
        gaze_y = np.clip(0.3 * _smooth(rng, t, 15, 60), -1, 1)
        tx = 0.025 * _smooth(rng, t, 30, 90)
        ty = 0.02 * _smooth(rng, t, 30, 90)
        scale = rng.uniform(0.95, 1.05) + 0.03 * _smooth(rng, t, 30, 90)
        return cls(
            yaw=yaw, pitch=pitch, roll=roll, mouth_open=mouth_open, smile=smile, blink_right=blink_right,
            blink_left=blink_left, brow_raise=brow_raise, gaze_x=gaze_x, gaze_y=gaze_y, tx=tx, ty=ty, scale=scale,
        )


@dataclass(frozen=True)
class SyntheticVideo:
    """What the dataset writer needs to reproduce a synthetic clip: identity seed, motion seed, frame count.

    `motion_seed` may belong to another identity's clip: `SyntheticVideo(a, motion_seed_of_b, n)` is A
    performing B's motion.
    """

    identity_seed: int
    motion_seed: int
    num_frames: int

    @property
    def identity(self) -> Identity:
        return Identity.sample(self.identity_seed)

    @property
    def motion(self) -> Motion:
        return Motion.sample(self.motion_seed, self.num_frames)

    def render(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frames [T,H,W,3] uint8, landmarks [T,68,2] float32, yaw [T] float32 in degrees)."""
        return render_video(self.identity, self.motion, size)


# ----------------------------------------------------------------------------------------------------------------
# 3D geometry of an identity
# ----------------------------------------------------------------------------------------------------------------


def _cranium_z(ident: Identity, x: np.ndarray, y: np.ndarray, front: bool = True) -> np.ndarray:
    """z of the cranium ellipsoid's front (or back) surface at (x, y); 0 beyond its outline."""
    ax, ay, az = 0.84 * ident.head_width, 0.97, 0.98
    r = 1 - (x / ax) ** 2 - ((y - _CRANIUM_CENTRE[1]) / ay) ** 2
    depth = az * np.sqrt(np.clip(r, 0.0, None))
    return _CRANIUM_CENTRE[2] + (depth if front else -depth)


def _face_z(x: np.ndarray, half_width: float = 0.86) -> np.ndarray:
    """z of the front of the face (a cylinder-like surface) at horizontal position x."""
    return 0.9 * np.sqrt(np.clip(1 - (x / half_width) ** 2, 0.03, None)) - 0.02


@dataclass(frozen=True)
class _Geometry:
    """Precomputed 3D geometry of one identity (head frame unless said otherwise)."""

    landmarks: np.ndarray  # [68, 3] neutral
    basis: np.ndarray  # [E, 68, 3] expression displacements (see _EXPRESSIONS)
    extra: np.ndarray  # [M, 3] non-landmark head points, slices in `parts`
    parts: dict  # name -> slice into extra
    body: np.ndarray  # [K, 2] torso outline in body frame
    skin_layers: tuple  # colours of the shading bands, darkest first
    hair_layers: tuple
    cloth_layers: tuple


_EXPRESSIONS = ("mouth_open", "smile", "blink_right", "blink_left", "brow_raise")


def _landmark_template(ident: Identity) -> np.ndarray:
    """Neutral 68 iBUG landmarks [68, 3] shaped by the identity."""
    p = np.zeros((68, 3))
    # jaw 0..16, from the subject's right ear (image left) around the chin
    half = np.array(
        [(-0.80, 0.00), (-0.795, 0.17), (-0.775, 0.34), (-0.735, 0.50), (-0.665, 0.655), (-0.56, 0.79),
         (-0.425, 0.905), (-0.235, 0.99), (0.0, 1.03)]
    )
    k = np.arange(9) / 8.0
    jaw_scale = 1 + (ident.jaw_width - 1) * np.clip((k - 0.2) / 0.5, 0, 1)  # widens the lower jaw
    jaw_scale = jaw_scale * (1 + (ident.chin_width - 1) * np.clip((k - 0.6) / 0.3, 0, 1) * 0.6)
    hx = half[:, 0] * ident.head_width * jaw_scale
    hy = np.where(half[:, 1] > 0.3, 0.3 + (half[:, 1] - 0.3) * ident.face_length, half[:, 1])
    hz = 0.1 + 0.62 * k**1.6
    p[0:9] = np.stack([hx, hy, hz], 1)
    p[9:17] = p[7::-1] * np.array([-1, 1, 1])

    # brows 17..21 (right), 22..26 (left), outer to inner on the right, inner to outer on the left
    bx = np.array([-0.70, -0.56, -0.41, -0.27, -0.13]) * ident.eye_spacing ** 0.5
    by = np.array([-0.17, -0.245, -0.27, -0.255, -0.205]) + ident.brow_height
    p[17:22] = np.stack([bx, by, _face_z(bx) + 0.06], 1)
    p[22:27] = p[21:16:-1] * np.array([-1, 1, 1])

    # nose: bridge 27..30 (top to tip), nostrils 31..35 (image left to right)
    nl = ident.nose_length
    p[27:31] = [(0, -0.12, 0.93), (0, 0.03 * nl, 0.99), (0, 0.17 * nl, 1.07), (0, 0.31 * nl, 1.17)]
    nx = np.array([-0.15, -0.075, 0, 0.075, 0.15]) * ident.nose_width
    ny = np.array([0.375, 0.395, 0.41, 0.395, 0.375]) * nl
    p[31:36] = np.stack([nx, ny, np.array([0.95, 1.0, 1.05, 1.0, 0.95])], 1)

    # eyes: 36 outer, 37 38 upper lid, 39 inner, 40 41 lower lid (right eye); the left eye mirrors it
    cx = -0.33 * ident.eye_spacing
    ex = np.array([-0.15, -0.065, 0.05, 0.135, 0.05, -0.065]) * ident.eye_size
    ey = np.array([0.012, -0.072, -0.074, 0.01, 0.045, 0.045]) * ident.eye_size
    xs = cx + ex
    p[36:42] = np.stack([xs, ey, _face_z(xs) - 0.02], 1)
    right = p[36:42] * np.array([-1, 1, 1])
    p[42:48] = right[[3, 2, 1, 0, 5, 4]]

    # mouth: outer 48..59 from the right corner along the upper lip, inner 60..67
    mw, mt = ident.lip_width, ident.lip_thickness
    my = 0.66 * (0.3 + (0.66 - 0.3) * ident.face_length) / 0.66
    ox = np.array([-0.25, -0.16, -0.07, 0.0, 0.07, 0.16, 0.25, 0.16, 0.07, 0.0, -0.07, -0.16]) * mw
    oy = np.array([0.0, -0.05, -0.075, -0.062, -0.075, -0.05, 0.0, 0.065, 0.095, 0.10, 0.095, 0.065])
    oy = np.where(oy < 0, oy * mt, oy * (0.5 + 0.5 * mt))
    p[48:60] = np.stack([ox, my + oy, _face_z(ox) + 0.1], 1)
    ix = np.array([-0.2, -0.08, 0.0, 0.08, 0.2, 0.08, 0.0, -0.08]) * mw
    iy = np.array([0.0, -0.006, -0.004, -0.006, 0.0, 0.006, 0.004, 0.006])
    p[60:68] = np.stack([ix, my + iy, _face_z(ix) + 0.08], 1)
    return p


def _expression_basis(ident: Identity, p: np.ndarray) -> np.ndarray:
    """Displacements [len(_EXPRESSIONS), 68, 3] added to the neutral landmarks, linear in each coefficient."""
    b = np.zeros((len(_EXPRESSIONS), 68, 3))
    d = 0.26 * ident.face_length  # full jaw drop
    # mouth_open: the jaw, chin and lower lip drop; the corners follow part way and come in
    mo = b[0]
    for i, w in zip(range(3, 14), (0.05, 0.15, 0.4, 0.65, 0.85, 0.95, 0.85, 0.65, 0.4, 0.15, 0.05), strict=True):
        mo[i, 1] = w * d
    mo[[55, 59], 1] = 0.78 * d
    mo[[56, 58], 1] = 0.94 * d
    mo[57, 1] = d
    mo[[65, 67], 1] = 0.86 * d
    mo[66, 1] = 0.92 * d
    mo[[61, 62, 63], 1] = -0.04 * d
    mo[[49, 50, 51, 52, 53], 1] = -0.03 * d
    mo[[48, 60, 64, 54], 1] = 0.4 * d
    mo[[48, 60], 0] = 0.1 * d
    mo[[54, 64], 0] = -0.1 * d
    # smile: corners out and up, the lips stretch, the lower lids rise
    sm = b[1]
    sm[[48, 60], 0], sm[[54, 64], 0] = -0.05, 0.05
    sm[[48, 54], 1] = sm[[60, 64], 1] = -0.055
    sm[[49, 59, 61, 67], 0], sm[[53, 55, 63, 65], 0] = -0.02, 0.02
    sm[[49, 53, 59, 55], 1] = -0.025
    sm[[61, 63, 65, 67], 1] = -0.015
    sm[[40, 41, 46, 47], 1] = -0.01
    # blinks: the upper lid comes down onto the lower lid
    for k, (upper, lower) in ((2, ((37, 41), (38, 40))), (3, ((43, 47), (44, 46)))):
        for u_i, l_i in (upper, lower):
            b[k, u_i, 1] = p[l_i, 1] - p[u_i, 1] - 0.004
    # brow raise: brows up (inner ends a little more), the upper lids open slightly
    br = b[4]
    br[17:27, 1] = -0.075
    br[[20, 21, 22, 23], 1] = -0.09
    br[[37, 38, 43, 44], 1] = -0.008
    return b


def _ring(centre: np.ndarray, u: np.ndarray, v: np.ndarray, ru: float, rv: float, n: int,
          power: float = 1.0) -> np.ndarray:
    """n points of a (super-)ellipse in 3D with axes u*ru and v*rv around `centre`."""
    a = np.linspace(0, 2 * math.pi, n, endpoint=False)
    c, s = np.cos(a), np.sin(a)
    c = np.sign(c) * np.abs(c) ** power
    s = np.sign(s) * np.abs(s) ** power
    return centre + np.outer(c * ru, u) + np.outer(s * rv, v)


def _sphere_points(n: int) -> np.ndarray:
    """n roughly uniform unit vectors (Fibonacci sphere)."""
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = math.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.cos(phi), np.sin(theta) * np.sin(phi)], 1)


@lru_cache(maxsize=1024)
def _geometry(ident: Identity) -> _Geometry:
    p = _landmark_template(ident)
    basis = _expression_basis(ident, p)
    parts: dict[str, slice] = {}
    chunks: list[np.ndarray] = []

    def add(name: str, pts: np.ndarray) -> None:
        start = sum(len(c) for c in chunks)
        chunks.append(np.asarray(pts, dtype=np.float64).reshape(-1, 3))
        parts[name] = slice(start, start + len(chunks[-1]))

    hw = ident.head_width
    ax, ay, az = 0.84 * hw, 0.97, 0.98
    unit = _sphere_points(160)
    cranium = _CRANIUM_CENTRE + unit * np.array([ax, ay, az])

    # skin of the face: hairline arch, temples, the back of the jaw (visible when the head turns)
    hx = np.linspace(-0.8, 0.8, 11) * hw
    hl = ident.hairline if ident.hair_style not in ("bald",) else -0.95
    hy = hl + 0.42 * (hx / (0.8 * hw)) ** 2
    hairline = np.stack([hx, hy, _cranium_z(ident, hx, hy) + 0.01], 1)
    sides = np.array([(-0.8 * hw, -0.05, -0.25), (0.8 * hw, -0.05, -0.25), (-0.72 * hw, 0.42, -0.3),
                      (0.72 * hw, 0.42, -0.3), (-0.52 * hw, 0.72, -0.35), (0.52 * hw, 0.72, -0.35)])
    face_skin = np.concatenate([hairline, sides])
    if ident.hair_style == "bald":
        face_skin = np.concatenate([face_skin, cranium[cranium[:, 2] > -0.4]])
    add("face_skin", face_skin)
    add("hairline", hairline)

    # hair volume behind the face
    vol = ident.hair_volume
    style = ident.hair_style
    if style == "bald":
        hair = cranium[(cranium[:, 1] > -0.35) & (cranium[:, 1] < 0.05) & (cranium[:, 2] < 0.0)] * [1.04, 1, 1.04]
    else:
        scale = {"crew": 1.02, "curly": 1.22, "bob": 1.1, "long": 1.08}.get(style, 1.06) * vol
        cut = {"crew": -0.08, "short": -0.02, "fringe": -0.02, "bun": 0.0, "curly": 0.15, "bob": 0.75,
               "long": 0.9}[style]
        hair = _CRANIUM_CENTRE + unit * np.array([ax, ay, az]) * scale
        hair = hair[hair[:, 1] < cut + 0.2 * (hair[:, 2] < -0.2)]
        if style in ("long", "bob"):
            length = 1.9 if style == "long" else 0.85
            width = 0.98 * hw * vol
            drape = np.array([(s * width * f, length * g, zz) for s in (-1, 1) for f, g in ((1.05, 0.6), (1.0, 1.0))
                              for zz in (-0.1, -0.5)])
            hair = np.concatenate([hair, drape])
        if style == "bun":
            hair = np.concatenate([hair, _ring(np.array([0, -1.08, -0.45]), np.array([1.0, 0, 0]),
                                               np.array([0, 0.6, -0.8]), 0.33, 0.33, 12)])
    add("hair", hair)

    # hair strands (front of the hair volume): curves from the crown to the hairline, in 6 segments each
    if style not in ("bald", "crew"):
        crown = np.array([0.0, -0.95, -0.45])
        scale = {"curly": 1.2, "bob": 1.08, "long": 1.06}.get(style, 1.04) * vol
        strands = []
        for x in np.linspace(-0.7, 0.7, 7) * hw:
            y = hl + 0.42 * (x / (0.8 * hw)) ** 2
            end = np.array([x, y, _cranium_z(ident, np.array(x), np.array(y)).item()])
            for f in np.linspace(0, 1, 7):
                q = (1 - f) * crown + f * end - _CRANIUM_CENTRE
                q = q / np.linalg.norm(q / np.array([ax, ay, az]))  # back onto the ellipsoid
                strands.append(_CRANIUM_CENTRE + q * scale)
        add("strands", np.array(strands))

    # fringe (drawn over the forehead): a side-swept lock from the hairline
    if style == "fringe":
        fx = np.array([-0.8, -0.55, -0.2, 0.2, 0.55, 0.8, 0.62, 0.3, -0.1, -0.5, -0.78]) * hw
        fy = np.array([-0.2, -0.52, -0.62, -0.6, -0.45, -0.2, -0.3, -0.38, -0.42, -0.36, -0.16])
        fy = np.where(np.arange(11) <= 5, np.minimum(fy, hl + 0.42 * (fx / (0.8 * hw)) ** 2 - 0.02), fy)
        add("fringe", np.stack([fx, fy, _cranium_z(ident, fx, fy) + 0.03], 1))

    # ears: flat ovals on the sides, turned back a little
    for name, side in (("ear_right", -1.0), ("ear_left", 1.0)):
        centre = np.array([side * 0.86 * hw, 0.13, -0.12])
        add(name, _ring(centre, np.array([0.0, 1.0, 0.0]), np.array([side * 0.55, 0.0, -0.83]),
                        0.18 * ident.ear_size, 0.11 * ident.ear_size, 12))

    # neck top (moves with the head)
    nw = 0.46 * ident.neck_width
    add("neck_top", np.array([(-nw, 0.55, -0.3), (nw, 0.55, -0.3)]))

    # cheeks (blush) and the lit point of the face
    cheek_z = float(_face_z(np.array(0.47))) + 0.02
    add("cheeks", np.array([(-0.47, 0.38, cheek_z), (0.47, 0.38, cheek_z)]))
    add("light", np.array([(-0.12, 0.05, 0.95), (0.0, 0.1, 0.0)]))

    eye_r = p[36:42].mean(0)
    eye_l = p[42:48].mean(0)

    # beard: upper boundary over the cheeks and under the nose (the jaw part comes from the landmarks)
    if ident.beard in ("full", "stubble"):
        bx = np.array([0.78, 0.62, 0.36, 0.16, 0.0, -0.16, -0.36, -0.62, -0.78]) * hw
        by = np.array([0.12, 0.36, 0.47, 0.47, 0.46, 0.47, 0.47, 0.36, 0.12])
        add("beard", np.stack([bx, by, _face_z(bx) + 0.1], 1))
    if ident.beard in ("full", "moustache", "goatee"):
        mx = np.array([-0.28, -0.15, 0.0, 0.15, 0.28, 0.22, 0.0, -0.22]) * ident.lip_width
        my_ = p[51, 1]
        mys = np.array([0.02, -0.1, -0.11, -0.1, 0.02, -0.03, -0.05, -0.03]) + my_
        add("moustache", np.stack([mx, mys, _face_z(mx) + 0.13], 1))

    # glasses: a frame ring around each eye, slightly in front of the face
    if ident.glasses != "none":
        power = 1.0 if ident.glasses == "round" else 0.45
        for name, c in (("glasses_right", eye_r), ("glasses_left", eye_l)):
            centre = np.array([c[0] * 1.03, c[1] + 0.01, _face_z(np.array(c[0])) + 0.13])
            add(name, _ring(centre, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), 0.19, 0.135, 20, power))
        add("glasses_arms", np.array([(-0.84 * hw, -0.02, -0.05), (0.84 * hw, -0.02, -0.05)]))

    extra = np.concatenate(chunks)

    sw = 1.95 * ident.shoulder_width
    nb = 0.5 * ident.neck_width
    body = np.array([(-sw, 3.3), (-sw, 2.4), (-0.97 * sw, 2.12), (-0.88 * sw, 1.93), (-0.7 * sw, 1.8),
                     (-0.45 * sw, 1.7), (-nb - 0.12, 1.56), (nb + 0.12, 1.56), (0.45 * sw, 1.7), (0.7 * sw, 1.8),
                     (0.88 * sw, 1.93), (0.97 * sw, 2.12), (sw, 2.4), (sw, 3.3)])

    skin_layers = tuple(_shade(ident.skin, k) for k in (0.8, 0.87, 0.94, 1.0))
    hair_base = ident.hair_colour if style != "bald" else _shade(ident.skin, 0.9)
    hair_layers = (_shade(hair_base, 0.75), hair_base, _mix(hair_base, (255, 255, 255), 0.12))
    cloth_layers = (_shade(ident.clothing, 0.7), _shade(ident.clothing, 0.85), ident.clothing)
    return _Geometry(p, basis, extra, parts, body, skin_layers, hair_layers, cloth_layers)


# ----------------------------------------------------------------------------------------------------------------
# Projection
# ----------------------------------------------------------------------------------------------------------------


def _rotation(pose: FramePose) -> np.ndarray:
    """R = Rz(roll) @ Rx(pitch) @ Ry(yaw) in head coordinates (x right, y down, z toward the camera)."""
    y, p, r = (math.radians(v) for v in (pose.yaw, pose.pitch, pose.roll))
    cy, sy, cp, sp, cr, sr = math.cos(y), math.sin(y), math.cos(p), math.sin(p), math.cos(r), math.sin(r)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


class _Camera:
    """Projects head-frame points of one frame to pixels (mild perspective) and body-frame points without rotation."""

    def __init__(self, pose: FramePose, size: int) -> None:
        self.rotation = _rotation(pose)
        self.pixels_per_unit = _SCALE * size * pose.scale
        self.cx = size * (0.5 + pose.tx)
        self.cy = size * (_EYE_LEVEL + pose.ty)
        self.body_shift = 0.12 * math.sin(math.radians(pose.yaw))

    def rotate(self, pts: np.ndarray) -> np.ndarray:
        return (pts - _PIVOT) @ self.rotation.T + _PIVOT

    def project(self, pts: np.ndarray) -> np.ndarray:
        """[N, 3] head-frame points -> [N, 2] pixels."""
        q = self.rotate(pts)
        k = self.pixels_per_unit * _FOCAL / (_FOCAL - q[:, 2:3])
        return np.stack([self.cx + k[:, 0] * q[:, 0], self.cy + k[:, 0] * q[:, 1]], 1)

    def project_body(self, pts: np.ndarray) -> np.ndarray:
        """[N, 2] body-frame points (not rotated with the head) -> [N, 2] pixels."""
        k = self.pixels_per_unit * _FOCAL / (_FOCAL + 0.3)
        return np.stack([self.cx + k * (pts[:, 0] + self.body_shift), self.cy + k * pts[:, 1]], 1)


def _landmarks_3d(geo: _Geometry, pose: FramePose) -> np.ndarray:
    coeffs = np.array([pose.mouth_open, pose.smile, pose.blink_right, pose.blink_left, pose.brow_raise])
    return geo.landmarks + np.tensordot(coeffs, geo.basis, axes=1)


def _check_size(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"synthetic: size must be an int in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")


def frame_landmarks(identity: Identity, pose: FramePose, size: int) -> np.ndarray:
    """The 68 landmarks [68, 2] float32 of `identity` in `pose`, exactly as `render_frame` returns them."""
    _check_size(size)
    geo = _geometry(identity)
    return _Camera(pose, size).project(_landmarks_3d(geo, pose)).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------------------------


def _fix(pts: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(pts) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _fill(img: np.ndarray, pts: np.ndarray, colour: RGB) -> None:
    cv2.fillPoly(img, [_fix(pts)], colour, cv2.LINE_AA, _SHIFT)


def _line(img: np.ndarray, pts: np.ndarray, colour: RGB, width: float, closed: bool = False) -> None:
    cv2.polylines(img, [_fix(pts)], closed, colour, max(1, int(round(width))), cv2.LINE_AA, _SHIFT)


def _disc(img: np.ndarray, centre: np.ndarray, radius: float, colour: RGB) -> None:
    c = (int(round(centre[0] * _ONE)), int(round(centre[1] * _ONE)))
    cv2.circle(img, c, max(1, int(round(radius * _ONE))), colour, -1, cv2.LINE_AA, _SHIFT)


def _hull(pts: np.ndarray) -> np.ndarray:
    return cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def _bands(img: np.ndarray, outline: np.ndarray, centre: np.ndarray, colours: tuple, factors: tuple) -> None:
    """Shading: the outline filled with colours[0], then nested copies shrunk towards the lit `centre`."""
    _fill(img, outline, colours[0])
    for colour, f in zip(colours[1:], factors, strict=True):
        _fill(img, centre + f * (outline - centre), colour)


def _composite(img: np.ndarray, clip: np.ndarray, draw, pad: float = 2.0) -> None:
    """Draw `draw(patch, offset)` onto img, but only inside the polygon `clip` (anti-aliased edge)."""
    h, w = img.shape[:2]
    x0 = max(int(math.floor(clip[:, 0].min() - pad)), 0)
    y0 = max(int(math.floor(clip[:, 1].min() - pad)), 0)
    x1 = min(int(math.ceil(clip[:, 0].max() + pad)), w)
    y1 = min(int(math.ceil(clip[:, 1].max() + pad)), h)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return
    roi = img[y0:y1, x0:x1]
    offset = np.array([x0, y0], dtype=np.float64)
    patch = roi.copy()
    draw(patch, offset)
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(mask, [_fix(clip - offset)], 255, cv2.LINE_AA, _SHIFT)
    m = mask[..., None].astype(np.uint16)
    roi[:] = ((roi.astype(np.uint16) * (255 - m) + patch.astype(np.uint16) * m + 127) // 255).astype(np.uint8)


def _polygon_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _soft_circle_image(size: int, centres: np.ndarray, radii: np.ndarray, colours: list) -> np.ndarray:
    img = np.zeros((size, size, 3), np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    weight = np.zeros((size, size, 1), np.float32)
    for c, r, col in zip(centres, radii, colours, strict=True):
        w = np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (2 * r * r))[..., None]
        img += w * np.asarray(col, np.float32)
        weight += w
    return img, weight


@lru_cache(maxsize=256)
def _background(ident: Identity, size: int) -> np.ndarray:
    """The identity's background at `size` (cached; the renderer copies it)."""
    c1 = np.asarray(ident.background[0], np.float32)
    c2 = np.asarray(ident.background[1], np.float32)
    t = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    img = np.broadcast_to((1 - t) * c1 + t * c2, (size, size, 3)).copy()
    rng = np.random.default_rng([ident.seed, 0xB6])
    style = ident.background_style
    if style == "wall":
        split = int(size * rng.uniform(0.55, 0.8))
        img[split:] = c2 * 0.8
        img[split - max(1, size // 64): split] = c1 * 1.1
    elif style == "bokeh":
        n = 7
        blobs, weight = _soft_circle_image(
            size, rng.uniform(0, 1, (n, 2)), rng.uniform(0.06, 0.16, n),
            [_hsv(rng.uniform(), rng.uniform(0.1, 0.6), rng.uniform(0.5, 1.0)) for _ in range(n)],
        )
        a = np.clip(weight, 0, 1) * 0.7
        img = img * (1 - a) + blobs / np.maximum(weight, 1e-6) * a
    elif style == "window":
        x0, y0 = rng.uniform(0.0, 0.6), rng.uniform(0.0, 0.3)
        x1, y1 = x0 + rng.uniform(0.25, 0.45), y0 + rng.uniform(0.3, 0.5)
        xs, ys = int(x0 * size), int(y0 * size)
        xe, ye = int(x1 * size), int(y1 * size)
        img[ys:ye, xs:xe] = np.minimum(c1 * 1.35 + 40, 255)
        bar = max(1, size // 64)
        img[ys:ye, (xs + xe) // 2: (xs + xe) // 2 + bar] = c2 * 0.7
        img[(ys + ye) // 2: (ys + ye) // 2 + bar, xs:xe] = c2 * 0.7
    # soft vignette
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    img *= (1 - 0.35 * (xx * xx + yy * yy))[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _oval(img: np.ndarray, centre: np.ndarray, rx: float, ry: float, angle: float, colour: RGB) -> None:
    c = (int(round(centre[0] * _ONE)), int(round(centre[1] * _ONE)))
    axes = (max(1, int(round(rx * _ONE))), max(1, int(round(ry * _ONE))))
    cv2.ellipse(img, c, axes, angle, 0, 360, colour, -1, cv2.LINE_AA, _SHIFT)


def _draw_eye(img: np.ndarray, ident: Identity, lid: np.ndarray, gaze: tuple[float, float], iris_r: float,
              foreshortening: float, width: float) -> None:
    """One eye: sclera, iris, pupil and a highlight clipped to the lid polygon [6, 2]; then the lid lines.

    The iris is an ellipse narrowed by the eye's foreshortening; the gaze moves it along the eye's axis.
    """
    lid_line = _shade(ident.skin, 0.35)
    if abs(_polygon_area(lid)) > 0.6:
        axis = lid[3] - lid[0]
        eye_w = float(np.linalg.norm(axis))
        axis = axis / max(eye_w, 1e-6)
        perp = np.array([-axis[1], axis[0]])
        centre = lid.mean(0) + axis * gaze[0] * 0.2 * eye_w + perp * gaze[1] * 0.1 * eye_w
        angle = math.degrees(math.atan2(axis[1], axis[0]))

        def draw(patch: np.ndarray, off: np.ndarray) -> None:
            patch[:] = SCLERA
            c = centre - off
            _oval(patch, c, iris_r * foreshortening, iris_r, angle, ident.eye_colour)
            _oval(patch, c, iris_r * 0.48 * foreshortening, iris_r * 0.48, angle, PUPIL)
            _disc(patch, c + np.array([-0.35, -0.4]) * iris_r, max(iris_r * 0.2, 0.5), (250, 250, 250))

        _composite(img, lid, draw)
    _line(img, lid[[0, 1, 2, 3]], lid_line, width * 0.9)
    _line(img, lid[[3, 4, 5, 0]], _shade(ident.skin, 0.78), width * 0.5)


def _draw_mouth(img: np.ndarray, ident: Identity, pts: np.ndarray, unit: float, width: float) -> None:
    outer, inner = pts[48:60], pts[60:68]
    upper = np.concatenate([outer[0:7], inner[[4, 3, 2, 1, 0]]])
    lower = np.concatenate([outer[[6, 7, 8, 9, 10, 11, 0]], inner[[0, 7, 6, 5, 4]]])
    _fill(img, upper, _shade(ident.lips, 0.86))
    _fill(img, lower, ident.lips)
    opening = abs(_polygon_area(inner))
    if opening > 0.8:
        gap = np.linalg.norm(inner[6] - inner[2])
        down = (inner[6] - inner[2]) / max(gap, 1e-6)

        def draw(patch: np.ndarray, off: np.ndarray) -> None:
            patch[:] = MOUTH_INTERIOR
            top = inner[[0, 1, 2, 3, 4]] - off
            teeth_h = min(0.35 * gap, 0.07 * unit)
            _fill(patch, np.concatenate([top, top[::-1] + down * teeth_h]), TEETH)
            bottom = inner[[4, 5, 6, 7, 0]] - off
            _fill(patch, np.concatenate([bottom, bottom[::-1] - down * 0.18 * gap]), _shade(TEETH, 0.9))

        _composite(img, inner, draw)
    _line(img, inner[[0, 1, 2, 3, 4]], _shade(ident.lips, 0.45), width * 0.7)


def render_frame(identity: Identity, pose: FramePose, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Render one frame: (image uint8 RGB [size, size, 3], landmarks float32 [68, 2] in its pixels)."""
    _check_size(size)
    geo = _geometry(identity)
    cam = _Camera(pose, size)
    lm3 = _landmarks_3d(geo, pose)
    pts = cam.project(lm3)
    ex = cam.project(geo.extra)
    part = {name: ex[s] for name, s in geo.parts.items()}
    ident = identity
    unit = cam.pixels_per_unit
    width = max(size / 128.0, 0.5)  # line width reference in pixels

    img = _background(ident, size).copy()

    # body and neck
    body = cam.project_body(geo.body)
    _bands(img, body, body[[6, 7]].mean(0) + np.array([-0.15, 0.45]) * unit, geo.cloth_layers, (0.9, 0.75))

    light = part["light"]
    lit_centre = light[0] + np.array([-0.05, -0.08]) * unit  # front of the face, light from the upper left

    if ident.hair_style in ("long", "bob", "curly"):
        hair_outline = _hull(part["hair"])
        _bands(img, hair_outline, hair_outline.mean(0) + np.array([-0.2, -0.4]) * unit, geo.hair_layers,
               (0.9, 0.6))

    neck_top = part["neck_top"]
    nb = 0.5 * ident.neck_width
    neck_bottom = cam.project_body(np.array([(nb, 1.62), (-nb, 1.62)]))
    neck = np.concatenate([neck_top, neck_bottom])
    _fill(img, neck, geo.skin_layers[1])
    dip = {"crew": 0.12, "v": 0.45, "collar": 0.4}[ident.neckline]
    neckline = cam.project_body(np.array([(-nb - 0.12, 1.6), (-nb * 0.5, 1.6 + dip * 0.7), (0, 1.6 + dip),
                                          (nb * 0.5, 1.6 + dip * 0.7), (nb + 0.12, 1.6)]))
    _fill(img, neckline, geo.skin_layers[2])
    if ident.neckline == "collar":
        white = _mix(ident.clothing, (245, 245, 245), 0.8)
        for s in (-1, 1):
            _fill(img, cam.project_body(np.array([(s * (nb + 0.14), 1.56), (0, 1.6 + dip), (s * (nb + 0.35), 1.85)])),
                  white)
    else:
        _line(img, neckline, geo.cloth_layers[0], width * 1.5)
    # the chin's shadow on the neck
    _fill(img, np.concatenate([neck_top, cam.project(np.array([(0.3, 0.9, -0.2), (-0.3, 0.9, -0.2)]))]),
          geo.skin_layers[0])

    if ident.hair_style not in ("long", "bob", "curly"):
        hair_outline = _hull(part["hair"])
        _bands(img, hair_outline, hair_outline.mean(0) + np.array([-0.2, -0.4]) * unit, geo.hair_layers,
               (0.9, 0.6))
    if "strands" in part:  # only the segments on the visible side of the hair volume
        s = geo.parts["strands"]
        facing = cam.rotate(geo.extra[s])[:, 2] - cam.rotate(_CRANIUM_CENTRE[None])[0, 2] > 0.1
        strand = part["strands"].reshape(7, 7, 2)
        visible = facing.reshape(7, 7)
        segments = [strand[i, j:j + 2] for i in range(7) for j in range(6) if visible[i, j] and visible[i, j + 1]]
        if segments:
            cv2.polylines(img, [_fix(q) for q in segments], False, _mix(geo.hair_layers[0], geo.hair_layers[1], 0.6),
                          max(1, int(width * 0.8)),
                          cv2.LINE_AA, _SHIFT)

    # ears: behind the face when turned away, in front when turned towards the camera
    ears_hidden = ident.hair_style in ("long", "bob")
    front_ears = []
    for name, side in (("ear_right", -1.0), ("ear_left", 1.0)):
        if ears_hidden:
            continue
        normal_z = cam.rotation[2, 0] * side
        (front_ears if normal_z > 0.25 else []).append(name)
        if normal_z <= 0.25:
            _fill(img, part[name], geo.skin_layers[1])

    # face skin with shading bands towards the lit front
    face_outline = _hull(np.concatenate([pts[0:17], part["face_skin"]]))
    _bands(img, face_outline, lit_centre, geo.skin_layers, (0.93, 0.8, 0.55))
    for name in front_ears:
        _fill(img, part[name], geo.skin_layers[2])
        c = part[name].mean(0)
        _fill(img, c + 0.55 * (part[name] - c), geo.skin_layers[0])

    # blush
    if ident.blush > 0.01:
        blush = _mix(geo.skin_layers[3], (220, 90, 90), ident.blush)
        for c in part["cheeks"]:
            _disc(img, c, 0.12 * unit, blush)

    # beard
    if "beard" in part:
        density = 0.85 if ident.beard == "full" else 0.35
        colour = _mix(ident.skin, ident.hair_colour if ident.hair_style != "bald" else (40, 30, 25), density)
        _fill(img, np.concatenate([pts[2:15], part["beard"]]), colour)
    if "moustache" in part:
        colour = _mix(ident.skin, ident.hair_colour if ident.hair_style != "bald" else (40, 30, 25), 0.85)
        _fill(img, part["moustache"], colour)
        if ident.beard == "goatee":
            _fill(img, np.concatenate([pts[[54, 55, 56, 57, 58, 59, 48]] + [0, 0.5], pts[[5, 6, 7, 8, 9, 10, 11]]]),
                  colour)

    # nose: shadow on the side away from the light, nostrils, tip highlight
    nose_shadow = np.concatenate([pts[27:31], pts[[33, 34]], pts[[27]] + (pts[35] - pts[31]) * 0.2])
    _fill(img, nose_shadow, geo.skin_layers[1])
    _fill(img, pts[[30, 31, 32, 33, 34, 35]], geo.skin_layers[2])
    nostril = _shade(ident.skin, 0.45)
    nostril_r = 0.028 * unit
    _disc(img, pts[32] * 0.7 + pts[33] * 0.3 + np.array([0, -0.2]) * nostril_r, nostril_r, nostril)
    _disc(img, pts[34] * 0.7 + pts[33] * 0.3 + np.array([0, -0.2]) * nostril_r, nostril_r, nostril)
    _disc(img, pts[30] * 0.8 + pts[29] * 0.2, 0.035 * unit, _mix(ident.skin, (255, 255, 255), 0.25))

    # eyes: sclera, iris and pupil clipped to the lids; the gaze moves the iris within the eye
    eye_w3 = np.linalg.norm(geo.landmarks[39] - geo.landmarks[36]) * unit
    for lid_idx in (slice(36, 42), slice(42, 48)):
        lid = pts[lid_idx]
        foreshortening = float(np.clip(np.linalg.norm(lid[3] - lid[0]) / eye_w3, 0.3, 1.0))
        _draw_eye(img, ident, lid, (pose.gaze_x, pose.gaze_y), 0.085 * ident.eye_size * unit, foreshortening,
                  width)

    # brows: thick strokes, thinner at the outer end
    thick = 0.045 * ident.brow_thickness * unit
    for idx in (slice(17, 22), slice(22, 27)):
        b = pts[idx]
        prof = np.array([0.45, 0.8, 1.0, 1.0, 0.9]) if idx.start == 17 else np.array([0.9, 1.0, 1.0, 0.8, 0.45])
        up = b - np.array([0, 1.0]) * (prof * thick * 0.6)[:, None]
        down = b + np.array([0, 1.0]) * (prof * thick * 0.5)[:, None]
        _fill(img, np.concatenate([up, down[::-1]]), ident.brow_colour)

    _draw_mouth(img, ident, pts, unit, width)

    if "fringe" in part:
        _bands(img, part["fringe"], part["fringe"].mean(0) + np.array([-0.1, -0.1]) * unit, geo.hair_layers[1:],
               (0.7,))

    if ident.glasses != "none":
        gw = width * 1.1
        right, left = part["glasses_right"], part["glasses_left"]
        _line(img, right, ident.glasses_colour, gw, closed=True)
        _line(img, left, ident.glasses_colour, gw, closed=True)
        # ring point 0 is on the +x side, point 10 on the -x side: the bridge joins the inner sides
        bridge = np.stack([right[0], (right[0] + left[10]) * 0.5 + np.array([0, -0.03]) * unit, left[10]])
        _line(img, bridge, ident.glasses_colour, gw)
        arms = part["glasses_arms"]
        if cam.rotation[2, 0] < -0.15:  # face turned to image left: the right arm is visible
            _line(img, np.stack([right[10], arms[0]]), ident.glasses_colour, gw)
        if cam.rotation[2, 0] > 0.15:
            _line(img, np.stack([left[0], arms[1]]), ident.glasses_colour, gw)

    return img, pts.astype(np.float32)


def render_video(identity: Identity, motion: Motion, size: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render every frame of `motion` on `identity`.

    Returns (frames [T, size, size, 3] uint8 RGB, landmarks [T, 68, 2] float32, yaw [T] float32 in degrees).
    With `identity` = A and `motion` sampled for B, this is A performing B's motion (landmarks: B's motion on
    A's face shape).
    """
    _check_size(size)
    T = len(motion)
    frames = np.empty((T, size, size, 3), np.uint8)
    landmarks = np.empty((T, 68, 2), np.float32)
    for t in range(T):
        frames[t], landmarks[t] = render_frame(identity, motion.frame(t), size)
    return frames, landmarks, np.asarray(motion.yaw, np.float32).copy()


# ----------------------------------------------------------------------------------------------------------------
# Contact sheet
# ----------------------------------------------------------------------------------------------------------------


def contact_sheet(num_identities: int = 6, num_frames: int = 6, size: int = 128, seed: int = 0,
                  clip_length: int = 60) -> np.ndarray:
    """A grid (one row per identity) of frames spread over a clip: uint8 RGB [rows*size, cols*size, 3]."""
    rows = []
    for i in range(num_identities):
        ident = Identity.sample(seed + i)
        motion = Motion.sample(seed + 1000 + i, clip_length)
        ts = np.linspace(0, clip_length - 1, num_frames).round().astype(int)
        rows.append(np.concatenate([render_frame(ident, motion.frame(int(t)), size)[0] for t in ts], axis=1))
    return np.concatenate(rows, axis=0)


def save_contact_sheet(path: str | Path, num_identities: int = 6, num_frames: int = 6, size: int = 128,
                       seed: int = 0) -> Path:
    """Write `contact_sheet(...)` as a PNG to `path` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(num_identities, num_frames, size, seed)
    sheet = sheet & np.uint8(0xFE)  # drop the lowest bit: invisible, and the PNG stays under 300 KB for the docs
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"save_contact_sheet: could not write {path}")
    log.info("wrote synthetic contact sheet %s", path)
    return path


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the synthetic talking-head contact sheet.")
    parser.add_argument("output", nargs="?", default="docs/images/synthetic_contact_sheet.png")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    save_contact_sheet(args.output, size=args.size, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
