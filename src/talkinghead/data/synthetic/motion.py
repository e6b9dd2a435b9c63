"""Motion independent of the identity: per-frame head pose and expression (`FramePose`, `Motion`)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields

import numpy as np

log = logging.getLogger(__name__)



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

